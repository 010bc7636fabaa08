package main

// The contract: what the root contracts.yaml declares for the quickstart,
// in Go. State and the structs are plain Go types that theusgen reads and
// does not generate; a process is a struct that is never instantiated,
// whose fields say what the process reads (in) and writes (out).

// State is the engine's state, by zone.
type State struct {
	Domain struct { // business state: versioned, conflict-checked
		User   User `theus:"user"`
		Logins int  `theus:"logins"`
	} `theus:"domain"`
	Global struct { // configuration: read-only inside processes
		MaxEmailLen int `theus:"max_email_len"`
	} `theus:"global"`
}

// User is the one user of the quickstart.
type User struct {
	ID       string   `json:"id"`
	Email    string   `json:"email"`
	Verified bool     `json:"verified"`
	Tags     []string `json:"tags"`
}

// UserUpdated is the payload of user.updated, encoded as JSON; the ID
// orders and partitions the messages.
//
//theus:topic name=user.updated key=ID
type UserUpdated struct {
	ID    string `json:"id"`
	Email string `json:"email"`
}

// UpdateUserEmail changes the user's email and announces it.
//
//theus:process semantic=effect emits=user.updated
type UpdateUserEmail struct {
	Args        struct{ Email string }
	User        User   `theus:"in,out,path=domain.user"`
	MaxEmailLen int    `theus:"in,path=global.max_email_len"`
	Result      string // the previous email
}

// RecordLogin counts a login. It touches no path that update_user_email
// reads, so the two never conflict.
//
//theus:process
type RecordLogin struct {
	Logins int `theus:"in,out,path=domain.logins"`
}

// CurrentEmail returns the user's email.
//
//theus:process semantic=pure
type CurrentEmail struct {
	User   User `theus:"in,path=domain.user"`
	Result string
}
