package main

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestHistogramQuantiles(t *testing.T) {
	var h histogram
	for i := 1; i <= 10000; i++ {
		h.record(time.Duration(i) * time.Microsecond)
	}
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		want := time.Duration(q*10000) * time.Microsecond
		got := h.quantile(q)
		if diff := float64(got-want) / float64(want); diff < -0.01 || diff > 0.01 {
			t.Errorf("q%v = %v, want %v ±1%%", q, got, want)
		}
	}
	if h.quantile(1) != h.max || h.max != 10*time.Millisecond || h.min != time.Microsecond {
		t.Errorf("q1 %v, max %v, min %v", h.quantile(1), h.max, h.min)
	}
}

func TestHistogramMergeAndOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var all, a, b histogram
	for i := range 5000 {
		d := time.Duration(r.ExpFloat64() * float64(time.Millisecond))
		all.record(d)
		if i%2 == 0 {
			a.record(d)
		} else {
			b.record(d)
		}
	}
	var m histogram
	m.merge(&a)
	m.merge(&b)
	prev := time.Duration(0)
	for _, q := range []float64{0.1, 0.5, 0.9, 0.99, 0.999, 1} {
		if m.quantile(q) != all.quantile(q) {
			t.Errorf("q%v: merged %v, direct %v", q, m.quantile(q), all.quantile(q))
		}
		if m.quantile(q) < prev {
			t.Errorf("q%v = %v below the previous quantile %v", q, m.quantile(q), prev)
		}
		prev = m.quantile(q)
	}
	if m.max != all.max || m.min != all.min || m.n != all.n || m.sum != all.sum {
		t.Error("merged summary differs from direct")
	}
}

func TestBuckets(t *testing.T) {
	for _, v := range []uint64{0, 1, 127, 128, 129, 255, 256, 1000, 1 << 20, 1<<40 + 12345, 1<<63 + 1} {
		i := bucketOf(v)
		if top := bucketTop(i); top < v || (i > 0 && bucketTop(i-1) >= v) {
			t.Errorf("v=%d: bucket %d spans (%d, %d]", v, i, bucketTop(i-1), top)
		}
	}
}
