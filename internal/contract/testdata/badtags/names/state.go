package p

type State struct {
	Domain struct {
		User User `theus:"user"`
		Max  int  `theus:"max"`
	} `theus:"domain"`
	Global struct {
		Max  int `theus:"max"`
		User int `theus:"user_count"`
	} `theus:"global"`
}

type User struct{ ID string }

// UserView is the user's own type: the generated view of User would
// collide with it.
type UserView struct{}

//theus:process
type MemberId struct{}

//theus:process errors=invalid_email
type Close struct{}

var ErrInvalidEmail = 1

//theus:topic name=user.updated
type UserUpdated struct{ ID string }

//theus:process emits=user.updated
type Save struct {
	UserUpdated User `theus:"out,path=domain.user"`
}
