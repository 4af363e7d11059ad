package disklog

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"time"

	"github.com/finexbot/eventhub/jobs"
)

// The on-disk format (docs/architecture.md, "The disk log", says the same).
//
// A file starts with a 32-byte header, little-endian:
//
//	magic    [8]byte  "EVHUBSEG" (a segment) or "EVHUBJOB" (jobs.state)
//	version  uint32   formatVersion; a file of a newer version is refused
//	base     uint64   a segment: the id of its first record; jobs.state:
//	                  the id through which it stands for the dropped segments
//	created  int64    Unix nanoseconds when the file was made
//	crc      uint32   CRC-32C of the 28 bytes before it
//
// then records, each:
//
//	length   uint32   bytes of the event's JSON; the top bit says that the
//	                  next record belongs to the same append (a batch)
//	crc      uint32   CRC-32C of length, id and the JSON
//	id       uint64   the event's id
//	event    []byte   the event's canonical JSON (jobs.Event.AppendJSON)
//
// A batch is its records with the top bit set but on the last: recovery
// cuts a batch the crash left without its last record, so an append is
// stored all or none.
const (
	segmentMagic     = "EVHUBSEG"
	stateMagic       = "EVHUBJOB"
	formatVersion    = 1
	headerSize       = 32
	recordHeaderSize = 16
	// maxPayload bounds a record's JSON: an event is at most 64 KiB of
	// data and a few hundred bytes of fields. A longer length is damage.
	maxPayload = 1 << 20
	moreFlag   = 1 << 31
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// fileHeader is a file's parsed header.
type fileHeader struct {
	version uint32
	base    uint64
	created time.Time
}

// appendHeader appends a file header.
func appendHeader(dst []byte, magic string, base uint64, created time.Time) []byte {
	start := len(dst)
	dst = append(dst, magic...)
	dst = binary.LittleEndian.AppendUint32(dst, formatVersion)
	dst = binary.LittleEndian.AppendUint64(dst, base)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(created.UnixNano()))
	return binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

// errHeader is a header that is not one of magic's: short, another magic,
// a bad checksum or version 0. A newer version is a versionError instead.
var errHeader = errors.New("bad header")

// parseHeader parses the header at the start of b for a file of magic.
func parseHeader(b []byte, magic, path string) (fileHeader, error) {
	if len(b) < headerSize {
		return fileHeader{}, fmt.Errorf("%w: %d bytes", errHeader, len(b))
	}
	if string(b[:8]) != magic {
		return fileHeader{}, fmt.Errorf("%w: magic %q, want %q", errHeader, b[:8], magic)
	}
	h := fileHeader{
		version: binary.LittleEndian.Uint32(b[8:]),
		base:    binary.LittleEndian.Uint64(b[12:]),
		created: time.Unix(0, int64(binary.LittleEndian.Uint64(b[20:]))),
	}
	// The version first: a newer format may lay the rest out otherwise.
	if h.version > formatVersion {
		return fileHeader{}, versionError(path, h.version)
	}
	if crc32.Checksum(b[:28], castagnoli) != binary.LittleEndian.Uint32(b[28:]) {
		return fileHeader{}, fmt.Errorf("%w: checksum", errHeader)
	}
	if h.version == 0 {
		return fileHeader{}, fmt.Errorf("%w: version 0", errHeader)
	}
	return h, nil
}

// appendRecord appends the record of event ev with id; more says the
// next record is of the same batch.
func appendRecord(dst []byte, id uint64, more bool, ev *jobs.Event) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, recordHeaderSize)...)
	binary.LittleEndian.PutUint64(dst[start+8:], id)
	dst = ev.AppendJSON(dst)
	length := uint32(len(dst) - start - recordHeaderSize)
	if more {
		length |= moreFlag
	}
	binary.LittleEndian.PutUint32(dst[start:], length)
	binary.LittleEndian.PutUint32(dst[start+4:], recordCRC(dst[start:start+4], dst[start+8:]))
	return dst
}

// recordCRC is the checksum of a record: its length field, then its id and
// payload.
func recordCRC(length, rest []byte) uint32 {
	return crc32.Update(crc32.Checksum(length, castagnoli), castagnoli, rest)
}

// record is one decoded record. payload aliases the bytes it was decoded
// from.
type record struct {
	id      uint64
	more    bool
	payload []byte
}

// size is the record's length on disk.
func (r record) size() int { return recordHeaderSize + len(r.payload) }

// decodeRecord decodes the record at the start of b and returns it and
// its length. errTorn: b ends inside it. errCorrupt: its length is 0 or
// past maxPayload, or its checksum is wrong. It never panics and never
// reads past b: the decoder of whatever a damaged disk hands back.
func decodeRecord(b []byte) (record, int, error) {
	if len(b) < recordHeaderSize {
		return record{}, 0, errTorn
	}
	rec, n, err := decodeRecordHeader(b[:recordHeaderSize])
	if err != nil {
		return record{}, 0, err
	}
	if len(b) < n {
		return record{}, 0, errTorn
	}
	rec.payload = b[recordHeaderSize:n]
	if recordCRC(b[:4], b[8:n]) != binary.LittleEndian.Uint32(b[4:]) {
		return record{}, 0, errCorrupt
	}
	return rec, n, nil
}

// decodeRecordHeader reads a record's first 16 bytes: its id, its batch
// flag and its whole length.
func decodeRecordHeader(h []byte) (record, int, error) {
	length := binary.LittleEndian.Uint32(h)
	rec := record{id: binary.LittleEndian.Uint64(h[8:]), more: length&moreFlag != 0}
	length &^= moreFlag
	if length == 0 || length > maxPayload {
		return record{}, 0, errCorrupt
	}
	return rec, recordHeaderSize + int(length), nil
}

// readRecord reads the next record from r into *buf (grown as needed; the
// record's payload aliases it until the next call). io.EOF: r ended
// between records. errTorn: r ended inside one.
func readRecord(r *bufio.Reader, buf *[]byte) (record, error) {
	h, err := r.Peek(recordHeaderSize)
	switch {
	case len(h) == 0 && errors.Is(err, io.EOF):
		return record{}, io.EOF
	case len(h) < recordHeaderSize && errors.Is(err, io.EOF):
		return record{}, errTorn
	case err != nil:
		return record{}, err
	}
	_, n, err := decodeRecordHeader(h)
	if err != nil {
		return record{}, err
	}
	if cap(*buf) < n {
		*buf = make([]byte, n)
	}
	b := (*buf)[:n]
	if _, err := io.ReadFull(r, b); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return record{}, errTorn
		}
		return record{}, err
	}
	rec, _, err := decodeRecord(b)
	return rec, err
}

// jobIDPrefix is what comes before the job id in an event's canonical
// JSON, after its type.
var jobIDPrefix = []byte(`","jobId":"`)

// jobIDOf returns the job id of an event's canonical JSON without
// decoding it: recovery reads every record, and the id is all the job
// index needs. A payload that does not have the canonical form is
// decoded in full.
func jobIDOf(payload []byte) (string, bool) {
	if i := bytes.Index(payload[:min(len(payload), 40)], jobIDPrefix); i > 0 {
		rest := payload[i+len(jobIDPrefix):]
		if j := bytes.IndexByte(rest[:min(len(rest), jobs.MaxIDLen+1)], '"'); j > 0 {
			return string(rest[:j]), true
		}
	}
	evs, err := jobs.DecodeEvents(payload)
	if err != nil || len(evs) != 1 {
		return "", false
	}
	return evs[0].JobID, true
}

// decodeEvent decodes a record's payload as outside input (the file may
// have been edited). It copies what it keeps.
func decodeEvent(payload []byte) (*jobs.Event, error) {
	evs, err := jobs.DecodeEvents(bytes.Clone(payload))
	if err != nil {
		return nil, err
	}
	if len(evs) != 1 {
		return nil, fmt.Errorf("%d events in one record", len(evs))
	}
	return &evs[0], nil
}
