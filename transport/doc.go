// Package transport is eventhub's HTTP edge, on fasthttp and fasthttp/router.
// It turns requests into calls on the hub and the workers and answers errors
// as JSON; it holds no business logic of its own.
//
// An SSE stream is answered before it starts (401, 403, 400, 429, 503), then
// its connection is hijacked: the transport writes the response head itself
// and hands the raw socket to the hub (actors.Hub.Open), which owns it from
// then on. Hijacked connections are outside fasthttp's timeouts, Concurrency
// and Shutdown, so the hub closes them itself.
//
// A fasthttp.RequestCtx never leaves its handler: what a stream needs is
// copied out of it first.
package transport
