module example.com/lintcases

go 1.26
