// Go side of benches/benches/chan.rs.
// Usage: chan_bench -bench ping_pong|chan_mpmc|select_fanin -procs N -runs R
// Prints: RESULT <bench> <procs> <median ns/op> <min ns/op>
package main

import (
	"flag"
	"fmt"
	"runtime"
	"sort"
	"sync"
	"time"
)

func pingPong() float64 {
	const n = 1000000
	a, b := make(chan uint64), make(chan uint64)
	t := time.Now()
	go func() {
		for v := range a {
			b <- v
		}
	}()
	done := make(chan struct{})
	go func() {
		for i := uint64(0); i < n; i++ {
			a <- i
			<-b
		}
		close(a)
		close(done)
	}()
	<-done
	return float64(time.Since(t).Nanoseconds()) / n
}

func mpmc() float64 {
	const n = 10000000
	ch := make(chan uint64, 1024)
	t := time.Now()
	var pw, cw sync.WaitGroup
	per := uint64(n / 4)
	for p := 0; p < 4; p++ {
		pw.Add(1)
		go func() {
			for i := uint64(0); i < per; i++ {
				ch <- i
			}
			pw.Done()
		}()
	}
	var mu sync.Mutex
	var sum uint64
	for c := 0; c < 4; c++ {
		cw.Add(1)
		go func() {
			var s uint64
			for v := range ch {
				s += v
			}
			mu.Lock()
			sum += s
			mu.Unlock()
			cw.Done()
		}()
	}
	pw.Wait()
	close(ch)
	cw.Wait()
	if sum != 4*(per*(per-1)/2) {
		panic("lost values")
	}
	return float64(time.Since(t).Nanoseconds()) / n
}

func fanin() float64 {
	const n = 1000000
	per := n / 8
	var cs [8]chan uint64
	t := time.Now()
	for i := range cs {
		cs[i] = make(chan uint64)
		go func(c chan uint64) {
			for j := 0; j < per; j++ {
				c <- uint64(j)
			}
		}(cs[i])
	}
	for got := 0; got < n; got++ {
		select {
		case <-cs[0]:
		case <-cs[1]:
		case <-cs[2]:
		case <-cs[3]:
		case <-cs[4]:
		case <-cs[5]:
		case <-cs[6]:
		case <-cs[7]:
		}
	}
	return float64(time.Since(t).Nanoseconds()) / n
}

func main() {
	bench := flag.String("bench", "ping_pong", "workload")
	procs := flag.Int("procs", 1, "GOMAXPROCS")
	runs := flag.Int("runs", 5, "runs")
	flag.Parse()
	runtime.GOMAXPROCS(*procs)
	fns := map[string]func() float64{"ping_pong": pingPong, "chan_mpmc": mpmc, "select_fanin": fanin}
	f, ok := fns[*bench]
	if !ok {
		panic("unknown bench " + *bench)
	}
	v := make([]float64, *runs)
	for i := range v {
		v[i] = f()
	}
	sort.Float64s(v)
	fmt.Printf("RESULT %s %d %.1f %.1f\n", *bench, *procs, v[len(v)/2], v[0])
}
