// Package console is an operator's web console for a Theus store: an
// http.Handler that a service mounts (behind its own authentication) to
// see the outbox and the history of commits, and to replay or skip parked
// keys.
//
//	h, err := console.New(st, console.WithBasePath("/console"), console.WithWatch(eng.Watch))
//	mux.Handle("/console/", http.StripPrefix("/console", h))
//
// Pages (server-rendered html/template; they work without JavaScript, a
// little of which only makes the live tail live):
//
//   - / the overview: outbox depth and oldest undelivered age per topic,
//     parked keys, the store's head version, and the relays with the
//     partitions each leases (outbox.LeaseReader: PostgreSQL's fleet), and,
//     with WithRelayStats, the counters and delivery rate of a relay that
//     runs in the same process;
//   - /parked the parked keys, each with its error, attempts and first
//     message, and Replay and Skip buttons that lead to a confirmation page;
//   - /history the commits, newest first, filtered by process, topic, key
//     and version range (?process=&topic=&key=&from=&to=);
//   - /commits/{version} one commit: the values it wrote as stored (JSON
//     unless the engine has a codec), its messages and their delivery state;
//   - /tail the commits as they are made (Server-Sent Events at
//     /tail/events; engine.Watch with WithWatch, else polling the store).
//
// Actions are POSTs from the confirmation pages: they carry a secret token
// of the handler in a form field (CSRF protection), their Origin (or
// Referer) must name the host the request was sent to, and, with
// WithActionToken, the operator's token. ReadOnly refuses them (403).
//
// The console reads a store through interfaces that the SQLite and
// PostgreSQL stores implement: outbox.StatsReader, outbox.Inspector,
// outbox.Parking, outbox.LeaseReader, engine.HistoryReader and Head (the
// last version). A
// page whose interface the store lacks says so.
package console
