package hubtest

import (
	"bytes"
	"io"
	"net/http"
	"testing"
)

// Request sends an HTTP request and returns the response, whose body it
// has read and closed (the status and headers are left to look at), and
// the body. token, when not empty, goes as "Authorization: Bearer token";
// a POST is sent as JSON; header holds more name, value pairs. It fails
// the test if the request cannot be made.
func Request(t testing.TB, method, url, token string, body []byte, header ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}
