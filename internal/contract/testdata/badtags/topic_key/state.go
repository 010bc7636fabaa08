package p

type State struct{}

//theus:topic name=user.updated key=Mail
type UserUpdated struct {
	ID    string `json:"id"`
	Email string `json:"email"`
}

//theus:topic name=user.seen key=At
//theus:topic name=user.updated
type UserSeen struct{ At float64 }

//theus:topic key=ID
type NoName struct{ ID string }

//theus:topic name=by.json.name key=id
//theus:topic name=by.go.name key=ID
//theus:topic name=...
type Keyed struct {
	ID string `json:"id"`
}
