package p

type State struct {
	Domain struct {
		Accounts map[string]Account `theus:"accounts,collection"`
	} `theus:"domain"`
}

type Account struct {
	ID      string `json:"id"`
	Balance int64  `json:"balance"`
}

// Rules are YAML flow mappings: what YAML reads otherwise than meant is
// reported at its column in the comment, with a hint.
//
//theus:process
//theus:rule {path: domain.accounts[*].balance, min: 0}
//theus:rule {path: "domain.accounts[*].id", regex: "^\d+$"}
//theus:rule {path: "domain.accounts[*].id", min_len: 1
type Deposit struct {
	Accounts map[string]Account `theus:"in,out,path=domain.accounts"`
}
