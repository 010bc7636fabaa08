// Package postgres is the Theus store on PostgreSQL: a durable
// engine.Store, and an outbox.Store for a relay, that any number of engine
// instances, in different processes and machines, share.
package postgres
