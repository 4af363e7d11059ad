package hubtest

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// Scrape returns the text of the /metrics page at url (the page's whole
// URL: a hub with --admin-listen serves it there), failing the test unless
// it answers 200.
func Scrape(t testing.TB, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v\n%s", url, resp.StatusCode, err, b)
	}
	return string(b)
}

// Metric scrapes the /metrics page at url and returns the value of the one
// sample selector picks. The selector is a metric name with, optionally, the
// labels the sample must have, written as the page prints them:
// `eventhub_streams_active`, `eventhub_streams_closed_total{reason="slow"}`.
// A sample may have more labels than the selector names; the test fails if
// none or more than one sample match.
func Metric(t testing.TB, url, selector string) float64 {
	t.Helper()
	v, err := Sample(Scrape(t, url), selector)
	if err != nil {
		t.Fatalf("%s: %v", url, err)
	}
	return v
}

// Sample is Metric on the text of a /metrics page already read.
func Sample(page, selector string) (float64, error) {
	name, want, err := parseSeries(selector)
	if err != nil {
		return 0, fmt.Errorf("selector %q: %w", selector, err)
	}
	var matched []string
	var value float64
	for line := range strings.Lines(page) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		// The series ends at its labels' closing brace (no value or
		// timestamp holds one), or without labels at the first blank.
		i := strings.LastIndexByte(line, '}') + 1
		if i == 0 {
			i = strings.IndexAny(line, " \t")
		}
		if i < 0 {
			return 0, fmt.Errorf("bad sample line %q", line)
		}
		series, rest := line[:i], strings.Fields(line[i:])
		n, labels, err := parseSeries(series)
		if err != nil || len(rest) == 0 {
			return 0, fmt.Errorf("bad sample line %q", line)
		}
		if n != name || !containsLabels(labels, want) {
			continue
		}
		matched = append(matched, series)
		if value, err = strconv.ParseFloat(rest[0], 64); err != nil {
			return 0, fmt.Errorf("sample %q: %w", line, err)
		}
	}
	switch len(matched) {
	case 0:
		return 0, fmt.Errorf("no series %s", selector)
	case 1:
		return value, nil
	default:
		return 0, fmt.Errorf("%s matches %d series, want one: %v", selector, len(matched), matched)
	}
}

func containsLabels(have, want map[string]string) bool {
	for k, v := range want {
		if hv, ok := have[k]; !ok || hv != v {
			return false
		}
	}
	return true
}

// parseSeries splits `name{a="x",b="y"}` into the name and its labels.
// Label values may hold the exposition format's escapes (\\, \", \n).
func parseSeries(s string) (name string, labels map[string]string, err error) {
	name, rest, ok := strings.Cut(s, "{")
	labels = map[string]string{}
	if !ok {
		return strings.TrimSpace(s), labels, nil
	}
	rest, ok = strings.CutSuffix(strings.TrimSpace(rest), "}")
	if !ok {
		return "", nil, fmt.Errorf("no closing brace")
	}
	for rest = strings.TrimSpace(rest); rest != ""; {
		k, after, ok := strings.Cut(rest, "=")
		if !ok || !strings.HasPrefix(after, `"`) {
			return "", nil, fmt.Errorf("bad label at %q", rest)
		}
		var v strings.Builder
		i := 1
		for ; i < len(after) && after[i] != '"'; i++ {
			if after[i] == '\\' && i+1 < len(after) {
				i++
				if after[i] == 'n' {
					v.WriteByte('\n')
					continue
				}
			}
			v.WriteByte(after[i])
		}
		if i == len(after) {
			return "", nil, fmt.Errorf("unterminated label value at %q", rest)
		}
		labels[strings.TrimSpace(k)] = v.String()
		rest = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(after[i+1:]), ","))
	}
	return strings.TrimSpace(name), labels, nil
}
