package workload

import "math"

// Result is the one JSON line an implementation binary prints. A figure
// that the run's mode does not measure is 0: relay_mps and the e2e
// latencies without a relay, relay_mps in drain mode, drain_mps outside
// it; lost and duplicates are counted only when a relay runs.
type Result struct {
	Impl    string `json:"impl"`
	C       int    `json:"c"`
	Relay   bool   `json:"relay"`   // the relay ran while producers committed
	Prefill int    `json:"prefill"` // drain mode: the backlog's size
	Users   int    `json:"users"`

	Commits   int64   `json:"commits"`    // transactions committed (the warm-up excepted)
	CommitTPS float64 `json:"commit_tps"` // commits / the producers' time
	Delivered int64   `json:"delivered"`  // distinct events the consumer received
	RelayMPS  float64 `json:"relay_mps"`  // delivered / (last delivery − producers' start)
	DrainMPS  float64 `json:"drain_mps"`  // delivered / (last delivery − relay start), drain mode

	E2EP50 float64 `json:"e2e_p50_ms"` // receive − commit start, over delivered events
	E2EP99 float64 `json:"e2e_p99_ms"`
	AckP50 float64 `json:"ack_p50_ms"` // commit returned − commit start, over commits
	AckP99 float64 `json:"ack_p99_ms"`

	Duplicates int64 `json:"duplicates"` // events received again
	Lost       int64 `json:"lost"`       // commits − delivered, after the wait

	Seconds    float64 `json:"seconds"`        // the measured window (see the package doc)
	ClientCPU  float64 `json:"client_cpu_s"`   // this process, in the window
	ServerCPU  float64 `json:"server_cpu_s"`   // PostgreSQL's processes, in the window; 0 for embedded stores
	CPUPerMsg  float64 `json:"cpu_us_per_msg"` // (client + server) / delivered (commits when no relay ran)
	EventBytes float64 `json:"event_bytes"`    // mean payload size delivered

	Go   string `json:"go"`
	Date string `json:"date"` // when the run ended, RFC 3339, UTC
}

// round keeps d decimals: the JSON line shows figures, not float noise.
func round(x float64, d int) float64 {
	p := math.Pow10(d)
	return math.Round(x*p) / p
}
