package p

type State struct {
	Domain struct {
		User  User `theus:"user"`
		count int  `theus:"count"`
		Base
	} `theus:"domain"`
}

type Base struct{ N int }

type User struct {
	ID    string
	email string
	Base
}

//theus:process
type Touch struct {
	user User `theus:"in,path=domain.user"`
}
