// Package jobs holds eventhub's domain model: the JobEvent that workers emit at
// each step of a job, the three job kinds and what each computes, the stream
// filters a client may ask for, and the worker actors that run submitted jobs.
//
// Everything that comes from outside the process (a published event, a
// submitted job, a filter in a query string) is validated here, once, at the
// edge: a value of type Event or Filter that exists is valid, and the rest of
// eventhub trusts it. Events are immutable once decoded, so one *Event may be
// shared by every goroutine and actor that routes it.
//
// Worker actors send the events they emit to a hub PID they are given; this
// package imports neither actors nor transport.
package jobs
