// Go side of benches/benches/net.rs.
// -bench tcp_echo_server: print the listen address, echo until killed.
// -bench accept_burst_server: print the listen address, start accepting
// 100 ms later; each connection gets one byte back for the byte it sends.
// -bench timers: 100,000 goroutines sleep 1..=50ms (same xorshift sequence
// as the Rust side); prints RESULT timers <procs> <p50 µs> <p99 µs>.
package main

import (
	"flag"
	"fmt"
	"net"
	"runtime"
	"sort"
	"sync"
	"time"
)

func echoServer() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	fmt.Println(ln.Addr().String())
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func(c net.Conn) {
			buf := make([]byte, 4096)
			for {
				n, err := c.Read(buf)
				if err != nil {
					return
				}
				if _, err := c.Write(buf[:n]); err != nil {
					return
				}
			}
		}(c)
	}
}

func acceptBurstServer() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	fmt.Println(ln.Addr().String())
	time.Sleep(100 * time.Millisecond)
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func(c net.Conn) {
			b := make([]byte, 1)
			if _, err := c.Read(b); err == nil {
				c.Write([]byte("!"))
				c.Read(b)
			}
			c.Close()
		}(c)
	}
}

func timers() {
	const n = 100000
	x := uint64(0x2545F4914F6CDD1D)
	late := make([]int64, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		ms := 1 + x%50
		wg.Add(1)
		go func(i int, d time.Duration) {
			t := time.Now()
			time.Sleep(d)
			late[i] = (time.Since(t) - d).Microseconds()
			wg.Done()
		}(i, time.Duration(ms)*time.Millisecond)
	}
	wg.Wait()
	sort.Slice(late, func(a, b int) bool { return late[a] < late[b] })
	fmt.Printf("RESULT timers %d %d %d\n", runtime.GOMAXPROCS(0), late[n/2], late[n*99/100])
}

func main() {
	bench := flag.String("bench", "timers", "workload")
	procs := flag.Int("procs", 1, "GOMAXPROCS")
	flag.Parse()
	runtime.GOMAXPROCS(*procs)
	switch *bench {
	case "tcp_echo_server":
		echoServer()
	case "accept_burst_server":
		acceptBurstServer()
	case "timers":
		timers()
	default:
		panic("unknown bench " + *bench)
	}
}
