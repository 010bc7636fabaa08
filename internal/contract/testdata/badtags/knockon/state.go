package p

// State's global zone is tagged with a misspelt name: paths into it are
// not reported again.
type State struct {
	Domain struct {
		User User `theus:"user"`
	} `theus:"domain"`
	Global struct {
		Max int `theus:"max"`
	} `theus:"globl"`
}

type User struct {
	ID    string `json:"id"`
	Email string `json:"email"`
}

// Update's output is in error (a misspelt option): its rule is not
// reported as a rule on something that is not an output.
//
//theus:process
//theus:rule {path: domain.user.email, min_len: 3}
type Update struct {
	User User `theus:"in,outt,path=domain.user"`
	Max  int  `theus:"in,path=global.max"`
}
