package golden

// UpdateUserEmail changes the user's email and announces it.
//
//theus:process semantic=effect emits=user.updated errors=invalid_email
//theus:rule {path: domain.user.email, regex: '^[^@\s]+@[^@\s]+$'}
type UpdateUserEmail struct {
	Args   struct{ Email string }
	User   User `theus:"in,out,path=domain.user"`
	MaxLen int  `theus:"in,path=global.max_email_len"`
	Result string
}

// Transfer moves an amount between two accounts.
//
//theus:process emits=transfer.completed errors=insufficient_funds
//theus:rule {path: "domain.accounts[*].balance", min: 0}
type Transfer struct {
	Args struct {
		From, To string
		Amount   int64
	}
	Accounts map[string]Account `theus:"in,out,path=domain.accounts"`
	Fees     map[string]int64   `theus:"in,path=global.fees"`
}

//theus:process semantic=pure
type CurrentEmail struct {
	Email  string `theus:"in,path=domain.user.email"`
	Result string
}
