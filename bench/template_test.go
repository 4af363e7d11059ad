package bench

import (
	"errors"
	"testing"
)

func TestTemplate(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, tmpl string
		pad        int
		want       string
	}{
		{"default body", DefaultPubBody, 3,
			`{"type":"growth","jobId":"bench-42","status":"completed","timestamp":"2026-01-01T00:00:00Z","data":{"assetId":"a17","ts":1700000000123456789,"seq":42,"pad":"xxx"}}`},
		{"no placeholders", `{"a":1}`, 0, `{"a":1}`},
		{"adjacent", "{seq}{ts}{seq}{asset}", 0, "421700000000123456789" + "42" + "a17"},
		{"braces that are not placeholders", `{"x":{}} {1} {`, 0, `{"x":{}} {1} {`},
		{"empty pad", `p={pad}.`, 0, `p=.`},
		{"progress body", DefaultProgressBody, 0,
			`{"type":"growth","jobId":"bench-job-7","status":"started","timestamp":"2026-01-01T00:00:00Z","data":{"assetId":"a17","progress":0.2500,"ts":1700000000123456789,"seq":42,"pad":""}}`},
		{"done body", DefaultDoneBody, 0,
			`{"type":"growth","jobId":"bench-job-7","status":"completed","timestamp":"2026-01-01T00:00:00Z","data":{"assetId":"a17","ts":1700000000123456789,"seq":42,"pad":""}}`},
		{"filler progress body", DefaultFillerProgressBody, 2,
			`{"type":"probability","jobId":"filler-7","status":"started","timestamp":"2026-01-01T00:00:00Z","data":{"scenarioId":"s1","progress":0.2500,"pad":"xx"}}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tm, err := ParseTemplate(tc.tmpl, tc.pad)
			if err != nil {
				t.Fatal(err)
			}
			got := string(tm.Append([]byte("keep:"), Values{TS: 1700000000123456789, Seq: 42, Asset: "a17", Job: 7, Progress: 0.25}))
			if got != "keep:"+tc.want {
				t.Errorf("got  %s\nwant keep:%s", got, tc.want)
			}
		})
	}
}

func TestTemplateErrors(t *testing.T) {
	t.Parallel()
	for _, tmpl := range []string{`{"ts":{tss}}`, `{time}`} {
		if _, err := ParseTemplate(tmpl, 0); !errors.Is(err, ErrBadTemplate) {
			t.Errorf("ParseTemplate(%q) = %v, want ErrBadTemplate", tmpl, err)
		}
	}
	if _, err := ParseTemplate("{pad}", -1); !errors.Is(err, ErrBadTemplate) {
		t.Errorf("negative pad: %v, want ErrBadTemplate", err)
	}
}

func TestTemplateHas(t *testing.T) {
	t.Parallel()
	tm, _ := ParseTemplate(`{"ts":{ts}}`, 0)
	if ts, seq := tm.Has(); !ts || seq {
		t.Errorf("Has() = %v, %v; want true, false", ts, seq)
	}
	if tm.HasAsset() {
		t.Errorf("HasAsset() of %q", `{"ts":{ts}}`)
	}
	if tm, _ := ParseTemplate(DefaultPubBody, 0); !tm.HasAsset() || tm.HasJob() {
		t.Errorf("the default body: HasAsset %v, HasJob %v; want true, false", tm.HasAsset(), tm.HasJob())
	}
	for _, body := range []string{DefaultProgressBody, DefaultDoneBody, DefaultFillerProgressBody} {
		if tm, _ := ParseTemplate(body, 0); !tm.HasJob() {
			t.Errorf("%s has no {job}", body)
		}
	}
}
