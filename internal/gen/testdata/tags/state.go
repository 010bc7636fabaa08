// The contract of this case is declared in Go: theusgen generate -tags.
package golden

import "time"

type State struct {
	Domain struct {
		User     User               `theus:"user"`
		Accounts map[string]Account `theus:"accounts,collection"`
	} `theus:"domain"`
	Global struct {
		MaxEmailLen int              `theus:"max_email_len"`
		Fees        map[string]int64 `theus:"fees"`
	} `theus:"global"`
}

type User struct {
	ID    string    `json:"id"`
	Email string    `json:"email,omitempty"` // not in a payload: allowed
	Tags  []string  `json:"tags"`
	Seen  time.Time `json:"seen"`
}

type Account struct {
	ID      string `json:"id"`
	Balance int64  `json:"balance"`
}

//theus:topic name=user.updated key=ID
type UserUpdated struct {
	ID    string `json:"id"`
	Email string `json:"mail"`
	Note  string `json:"it's"` // not a valid JSON name: encoding/json uses Note
}

//theus:topic name=transfer.completed key=From
type TransferCompleted struct {
	From, To string
	Amount   int64
	Legs     []Leg
}

type Leg struct {
	Account string
	Delta   int64 `json:"delta"`
}
