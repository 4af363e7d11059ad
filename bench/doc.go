// Package bench will hold eventhub's load harness: it drives many SSE
// streams over real TCP against a hub (or any SSE server) and reports
// latency percentiles, throughput and memory per connection. It speaks HTTP
// to the hub like any client and imports none of eventhub's packages.
package bench
