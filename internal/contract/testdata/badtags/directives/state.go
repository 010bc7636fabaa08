package p

type State struct {
	Domain struct {
		User User `theus:"user"`
	} `theus:"domain"`
	Global struct {
		Max int `theus:"max"`
	} `theus:"global"`
}

type User struct{ ID, Email string }

//theus:topic name=user.updated key=ID
type UserUpdated struct{ ID, Email string }

//theus:proces
type Typo struct{}

//theus:process semantic=pur emit=user.updated errors=bad_email,bad_email
//theus:process
type Update struct {
	User User `theus:"in,out,path=domain.user"`
	Max  int  `theus:"in,out,path=global.max"`
}

//theus:process semantic=pure emits=user.updated pure
//theus:rule {path: domain.user.email, required: true}
type Query struct {
	User   User `theus:"in,out,path=domain.user"`
	Result string
}

//theus:process emits=user.updated,nope semantic=effect semantic=guide
//theus:rule {path: domain.user.Email, regex: '('}
//theus:rule {path: domain.user.ID, min: 1}
//theus:rule {path: domain.user, required: true
//theus:rule
//theus:rule [1, 2]
type Rules struct {
	User  User   `theus:"in,out,path=domain.user"`
	Email string `theus:"out,path=domain.user.Email"`
	Again User   `theus:"in,path=domain.user"`
}

func f() {
	//theus:topic name=inside.func
	_ = 0
}
