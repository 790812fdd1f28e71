// Go side of benches/benches/http.rs: a net/http hello-world server
// (200, "Hello, World!", text/plain, keep-alive). Prints its address,
// serves until killed. -procs sets GOMAXPROCS.
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"runtime"
)

func main() {
	procs := flag.Int("procs", 1, "GOMAXPROCS")
	flag.Parse()
	runtime.GOMAXPROCS(*procs)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	fmt.Println(ln.Addr().String())
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte("Hello, World!"))
	})
	panic(http.Serve(ln, nil))
}
