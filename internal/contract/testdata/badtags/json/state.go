package p

type State struct {
	Domain struct {
		User User `theus:"user"`
	} `theus:"domain"`
}

type User struct {
	ID     string `json:"id,omitempty"`
	Secret string `json:"-"`
	Dash   string `json:"-,"`
	Name   string `json:"name"`
	Other  string `json:"name"`
}

//theus:topic name=user.updated
type UserUpdated struct {
	ID    string `json:"id,omitempty"`
	Count int    `json:",string"`
	Inner Inner
}

type Inner struct {
	At []int `json:"at,omitzero"`
}
