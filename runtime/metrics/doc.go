// Package metrics exports the Theus runtime's metrics to Prometheus
// (github.com/prometheus/client_golang): what the engine commits, what the
// relays deliver, and how full the outbox is.
//
// # Wiring
//
//	reg := prometheus.NewRegistry()
//	m, err := metrics.New(reg)
//	...
//	eng, err := shop.NewEngine(ctx, initial, impl, engine.WithStore(st), engine.WithMetrics(m))
//	relay := outbox.NewRelay(st, natsSink, outbox.WithRelayMetrics(m.Relay("nats")))
//	err = m.AddStore("main", st) // outbox gauges, read at each scrape
//	http.Handle("/metrics", metrics.Handler(reg))
//
// Add collectors.NewGoCollector() and collectors.NewProcessCollector to reg
// for the Go runtime's own metrics. To tell several engines of one process
// apart, give New a registerer wrapped with prometheus.WrapRegistererWith.
//
// # Metrics
//
// Engine (engine.Metrics), label process (the contract's process name):
//
//	theus_commits_total{process}                counter   calls committed
//	theus_conflicts_total{process}              counter   runs refused at commit: an input changed
//	theus_retries_total{process}                counter   runs started again after a conflict
//	theus_rule_violations_total{process,path,rule}
//	                                            counter   rules broken (refused, or warned and committed)
//
// Relay (outbox.RelayMetrics from Relay(name)), label relay (the name) and
// topic (the outbox topic):
//
//	theus_relay_deliveries_total{relay,topic}    counter   messages confirmed by the sink and acked
//	theus_relay_failures_total{relay,topic,class}
//	                                             counter   failed deliveries; class is transient,
//	                                                       permanent or unavailable (see outbox.Unavailable)
//	theus_relay_parked_total{relay,topic}        counter   messages the relay parked
//	theus_relay_batch_duration_seconds{relay}    histogram read of a batch to its last ack
//
// Store (read from outbox.StatsReader at scrape time), label store (the
// name given to AddStore):
//
//	theus_outbox_depth{store}                          gauge  messages waiting: neither delivered nor parked
//	theus_outbox_oldest_undelivered_age_seconds{store} gauge  age of the oldest waiting message, 0 if none
//	theus_outbox_parked_messages{store}                gauge  parked messages
//	theus_outbox_parked_keys{store}                    gauge  (topic, key)s held back by a parked message
//
// Of a store whose relays lease partitions of the outbox (outbox.FleetReader:
// PostgreSQL), one series per store handle, and one per partition (their
// count is fixed per store):
//
//	theus_relay_leases{store}            gauge    partitions the handle's relay leases now
//	theus_relay_handovers_total{store}   counter  partitions it took over from another relay
//	theus_relay_fenced_total{store}      counter  acks and failure records refused: lease lost
//	theus_outbox_partition_oldest_undelivered_age_seconds{store,partition}
//	                                     gauge    age of the partition's oldest waiting message, 0 if none
//
// # Cost and cardinality
//
// Label values come from the contract (processes, rule paths and kinds,
// topics) or from the application (relay and store names), never from a
// message's key or ID, so the number of series is fixed by the contract.
// The engine reports on every commit: the counters of each label value are
// resolved once and kept in a copy-on-write map, so after a process's
// first call its metrics cost a lock-free map lookup and an atomic add, and
// allocate nothing.
package metrics
