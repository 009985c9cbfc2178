module example.invalid/goserver

go 1.19
