// Package noio defines an Analyzer that reports I/O in process code.
//
// # Analyzer noio
//
// noio: report I/O in the code of Theus processes (code TP001)
//
// The engine runs a process on a snapshot and, when another commit
// touched what it read, runs it again: anything the process does besides
// reading its inputs and writing its outputs happens once per run. So a
// process, and every function of its module that it calls, does no I/O:
//
//   - os: files, directories, the environment (os.Getenv, os.LookupEnv,
//     os.Environ, ...), the process (os.Exit, os.Getpid, ...), and
//     os.Stdin, os.Stdout and os.Stderr; os/exec, os/signal, os/user;
//   - net and its clients and servers (net.Dial, http.Get, an
//     *http.Client's methods, ...), net/rpc, net/smtp;
//   - database/sql (sql.Open and the methods of DB, Tx, Stmt, Conn, Rows,
//     Row); syscall and golang.org/x/sys;
//   - io/ioutil's file functions, path/filepath's Walk, WalkDir, Glob, Abs
//     and EvalSymlinks;
//   - fmt.Print, fmt.Printf and fmt.Println (standard output), and the
//     package-level functions of log and log/slog.
//
// Pure helpers of the same packages are allowed: os.IsNotExist, net.ParseIP,
// http.StatusText, url.Parse, fmt.Sprintf, fmt.Errorf, ...
//
// Read what the process needs as an input or an argument; announce what
// others must do through an emitted topic, which the relay delivers after
// the commit; log in the caller, after the call returns.
package noio
