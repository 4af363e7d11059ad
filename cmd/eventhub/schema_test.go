package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/finexbot/eventhub/jobs"
)

// committedSchema is the copy of `eventhub schema` that the JavaScript
// client generates its TypeScript types from.
const committedSchema = "../../clients/js/schema/jobevent.schema.json"

// TestSchemaCommand: `eventhub schema` prints the JSON Schema of a JobEvent
// on stdout, and the client's copy is the same, byte for byte: a change to
// the Go types reaches the TypeScript types through `make client`.
func TestSchemaCommand(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"schema"}, func(string) string { return "" }, &stdout, &stderr); err != nil {
		t.Fatalf("eventhub schema: %v\n%s", err, stderr.String())
	}
	if stderr.Len() != 0 {
		t.Errorf("eventhub schema wrote on stderr: %s", stderr.String())
	}
	if !bytes.Equal(stdout.Bytes(), jobs.Schema()) {
		t.Error("eventhub schema does not print jobs.Schema()")
	}
	var schema struct {
		Dialect string         `json:"$schema"`
		Title   string         `json:"title"`
		Defs    map[string]any `json:"$defs"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &schema); err != nil {
		t.Fatalf("eventhub schema: not JSON: %v", err)
	}
	if schema.Dialect != "https://json-schema.org/draft/2020-12/schema" || schema.Title != "JobEvent" || len(schema.Defs) == 0 {
		t.Errorf("eventhub schema: $schema %q, title %q, %d definitions", schema.Dialect, schema.Title, len(schema.Defs))
	}

	committed, err := os.ReadFile(committedSchema)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(committed, stdout.Bytes()) {
		t.Errorf("%s differs from what `eventhub schema` prints: the Go types changed; run `make client` "+
			"to write it again, with the TypeScript types and the client built from it", strings.TrimPrefix(committedSchema, "../../"))
	}

	err = run(context.Background(), []string{"schema", "--out", "x"}, func(string) string { return "" }, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "no arguments") {
		t.Errorf("eventhub schema with arguments: %v, want an error", err)
	}
}
