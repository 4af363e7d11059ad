package transport

import (
	"encoding/json"

	"github.com/valyala/fasthttp"
)

// apiError is the JSON body of every error answer: {"error":"…"}.
type apiError struct {
	Error string `json:"error"`
}

// writeJSON answers status with v encoded as JSON.
func writeJSON(ctx *fasthttp.RequestCtx, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		panic("BUG: response not encodable: " + err.Error())
	}
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.Response.Header.Set("Cache-Control", "no-store")
	ctx.SetBody(append(body, '\n'))
}

// writeError answers status with {"error": msg}.
func writeError(ctx *fasthttp.RequestCtx, status int, msg string) {
	writeJSON(ctx, status, apiError{Error: msg})
}
