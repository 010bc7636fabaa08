package p

type State struct {
	Domain struct {
		User     User            `theus:"user"`
		Accounts map[string]User `theus:"accounts,collection"`
	} `theus:"domain"`
	Global struct {
		Max int `theus:"max"`
	} `theus:"global"`
}

type User struct{ ID, Email string }

type Person struct{ ID, Email string }

//theus:process
type Update struct {
	Max      string          `theus:"in,path=global.max"`
	User     Person          `theus:"in,out,path=domain.user"`
	Accounts map[int]User    `theus:"in,path=domain.accounts"`
	Email    Undefined       `theus:"in,path=domain.user.Email"`
	Ok       map[string]User `theus:"out,path=domain.accounts"`
}
