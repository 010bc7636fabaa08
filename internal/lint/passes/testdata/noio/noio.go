package noio

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"example.com/lintcases/helpers"
	"example.com/lintcases/shop"
)

type app struct{}

var _ shop.Processes = app{}

func (app) Update(_ context.Context, in shop.UpdateIn, out *shop.UpdateOut) error {
	limit := os.Getenv("EMAIL_LIMIT")                     // want `\[TP001\] os\.Getenv reads or changes the environment: .*pass configuration in as an argument`
	if _, err := os.ReadFile("/etc/limits"); err != nil { // want `\[TP001\] os\.ReadFile does file-system or process I/O`
		return err
	}
	fmt.Println("updating", in.Args.Email) // want `\[TP001\] fmt\.Println writes to standard output`
	fmt.Fprintln(os.Stdout, "updating")    // want `\[TP001\] os\.Stdout is the program's standard I/O`
	log.Printf("limit %s", limit)          // want `\[TP001\] log\.Printf writes a log line`
	_ = helpers.Env("HOME")                // want `\[TP001\] call to helpers\.Env: os\.Getenv reads or changes the environment \(example\.com/lintcases/helpers/helpers\.go:\d+:\d+ through helpers\.lookup\)`
	notify(in.Args.Email)
	u := in.User().Clone()
	u.Email = in.Args.Email
	out.SetUser(u)
	return nil
}

// notify is reached from Update: its findings say so.
func notify(email string) {
	resp, err := http.Get("https://example.com/?e=" + url.QueryEscape(email)) // want `\[TP001\] http\.Get does network I/O \(in notify, reached from app\.Update\)`
	if err == nil {
		resp.Body.Close()
	}
	_ = exec.Command("sendmail", email).Run() // want `\[TP001\] exec\.Command does system or network I/O` `\[TP001\] exec\.Cmd\.Run does system or network I/O`
	db, _ := sql.Open("sqlite", "x.db")       // want `\[TP001\] sql\.Open talks to a database`
	_ = db
	_, _ = net.Dial("tcp", "localhost:25") // want `\[TP001\] net\.Dial does network I/O`
	_ = syscall.Getpid()                   // want `\[TP001\] syscall\.Getpid does system or network I/O`
}

// Lookup uses only pure helpers of the same packages: nothing is reported.
func (app) Lookup(_ context.Context, in shop.LookupIn, out *shop.LookupOut) error {
	if in.Args.ID == "" {
		return errors.New("no id")
	}
	n, err := strconv.Atoi(strings.TrimPrefix(in.Args.ID, "u"))
	if err != nil {
		return fmt.Errorf("bad id %q: %w", in.Args.ID, err)
	}
	tags := in.User().Tags().Clone()
	sort.Strings(tags)
	slices.Reverse(tags)
	if ip := net.ParseIP("127.0.0.1"); ip.IsLoopback() && os.IsNotExist(err) {
		return nil
	}
	u, _ := url.Parse("https://example.com/" + strconv.Itoa(n))
	out.SetResult(fmt.Sprintf("%s %s %s %s", helpers.Normalize(in.User().Email()), u.Path, strings.Join(tags, ","), http.StatusText(200)))
	return nil
}

// unreached does I/O, but no process calls it: it is not checked.
func unreached() {
	fmt.Println(os.Getenv("HOME"))
}
