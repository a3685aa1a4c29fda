package harness

import "testing"

func TestParseBenchReadsEachUnit(t *testing.T) {
	raw := []byte(`goos: linux
BenchmarkProduceFloor/producer-2   	 1000000	      2620 ns/op	 112.21 MB/s	         4.241 cpu-s/M-msgs	     120 B/op	       3 allocs/op
BenchmarkProduceFloor/binding-2    	 1000000	      2088 ns/op	 140.82 MB/s	         3.419 cpu-s/M-msgs	      96 B/op	       2 allocs/op
PASS
`)
	tests := []struct {
		name         string
		mbs, cpu, al float64
	}{
		{"BenchmarkProduceFloor/producer", 112.21, 4.241, 3},
		{"BenchmarkProduceFloor/binding", 140.82, 3.419, 2},
	}
	for _, tt := range tests {
		m := parseBench(tt.name, raw)
		if m.Error != "" || m.MBPerSec != tt.mbs || m.CPUPerMMsg != tt.cpu || m.AllocsPerOp != tt.al {
			t.Errorf("parseBench(%s) = %+v, want %v MB/s, %v cpu-s/M-msgs, %v allocs/op", tt.name, m, tt.mbs, tt.cpu, tt.al)
		}
	}
	if m := parseBench("BenchmarkSplit", raw); m.Error == "" {
		t.Errorf("parseBench of a benchmark not in the output = %+v, want an error", m)
	}
}
