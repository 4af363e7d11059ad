package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"testing"
)

func mustCompute(t *testing.T, job Job) any {
	t.Helper()
	res, err := compute(context.Background(), job, noProgress)
	if err != nil {
		t.Fatalf("compute(%v, %s): %v", job.Type, job.Params, err)
	}
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatalf("result does not encode: %v", err)
	}
	if len(b) > MaxDataSize/2 {
		t.Errorf("result is %d bytes encoded, want well under %d", len(b), MaxDataSize)
	}
	return res
}

func growthJob(params string) Job {
	return Job{ID: "j-g", Type: Growth, AssetID: "a1", Params: json.RawMessage(params)}
}

func TestGrowth(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		params string
		values []float64
		gain   float64
	}{
		{name: "10% for 2 years", params: `{"principal":100,"rate":0.1,"years":2}`, values: []float64{100, 110, 121}, gain: 21},
		{name: "rate 0 stays flat", params: `{"principal":250,"rate":0,"years":3}`, values: []float64{250, 250, 250, 250}, gain: 0},
		{name: "contribution", params: `{"principal":0,"rate":0,"years":2,"contribution":50}`, values: []float64{0, 50, 100}, gain: 0},
		{name: "contribution grows", params: `{"principal":100,"rate":0.5,"years":2,"contribution":10}`, values: []float64{100, 160, 250}, gain: 130},
		{name: "zero years", params: `{"principal":7,"years":0}`, values: []float64{7}, gain: 0},
		{name: "losing everything", params: `{"principal":100,"rate":-1,"years":1}`, values: []float64{100, 0}, gain: -100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := mustCompute(t, growthJob(tt.params)).(growthResult)
			if !slices.Equal(res.Values, tt.values) {
				t.Errorf("values = %v, want %v", res.Values, tt.values)
			}
			if res.Final != tt.values[len(tt.values)-1] || res.Gain != tt.gain {
				t.Errorf("final %v gain %v, want %v and %v", res.Final, res.Gain, tt.values[len(tt.values)-1], tt.gain)
			}
		})
	}
	t.Run("defaults", func(t *testing.T) {
		t.Parallel()
		for _, params := range []string{"", "{}", "null"} {
			res := mustCompute(t, growthJob(params)).(growthResult)
			if want := math.Round(1000*math.Pow(1.05, 10)*100) / 100; len(res.Values) != 11 || res.Final != want {
				t.Errorf("params %q: %d values, final %v; want 11 and %v", params, len(res.Values), res.Final, want)
			}
		}
	})
	t.Run("largest stays finite", func(t *testing.T) {
		t.Parallel()
		res := mustCompute(t, growthJob(`{"principal":1e12,"rate":1,"years":100,"contribution":1e12}`)).(growthResult)
		if math.IsInf(res.Final, 0) || len(res.Values) != 101 {
			t.Errorf("final = %v over %d values", res.Final, len(res.Values))
		}
	})
}

func matrixJob(asset, scenario, params string) Job {
	return Job{ID: "j-m", Type: Matrix, AssetID: asset, ScenarioID: scenario, Params: json.RawMessage(params)}
}

func TestMatrix(t *testing.T) {
	t.Parallel()
	t.Run("defaults", func(t *testing.T) {
		t.Parallel()
		res := mustCompute(t, matrixJob("a1", "s1", "{}")).(matrixResult)
		if res.Rows != 10 || res.Cols != 10 || len(res.Grid) != 10 || len(res.Grid[0]) != 10 {
			t.Fatalf("grid %dx%d, want 10x10 with the grid", res.Rows, res.Cols)
		}
		if !(res.Min <= res.Mean && res.Mean <= res.Max && res.Min > 0) {
			t.Errorf("min %v mean %v max %v", res.Min, res.Mean, res.Max)
		}
		// The last column carries the whole shock (0.2), the first none:
		// with noise of at most ±2%, last/first <= 0.8·1.02/0.98 < 0.84.
		for i, row := range res.Grid {
			if row[9] >= row[0]*0.84 {
				t.Errorf("row %d: last %v not shocked from first %v", i, row[9], row[0])
			}
		}
	})
	t.Run("deterministic per scope", func(t *testing.T) {
		t.Parallel()
		a := mustCompute(t, matrixJob("a1", "s1", `{"rows":4,"cols":3}`)).(matrixResult)
		b := mustCompute(t, matrixJob("a1", "s1", `{"rows":4,"cols":3}`)).(matrixResult)
		c := mustCompute(t, matrixJob("a1", "s2", `{"rows":4,"cols":3}`)).(matrixResult)
		ja, _ := json.Marshal(a)
		jb, _ := json.Marshal(b)
		jc, _ := json.Marshal(c)
		if string(ja) != string(jb) {
			t.Errorf("same job, different results:\n%s\n%s", ja, jb)
		}
		if string(ja) == string(jc) {
			t.Errorf("another scenario gave the same grid")
		}
	})
	t.Run("full shock", func(t *testing.T) {
		t.Parallel()
		res := mustCompute(t, matrixJob("a1", "s1", `{"rows":2,"cols":2,"shock":1}`)).(matrixResult)
		if res.Min != 0 || res.Grid[0][1] != 0 || res.Grid[1][1] != 0 {
			t.Errorf("min %v grid %v: want the last column at 0", res.Min, res.Grid)
		}
	})
	t.Run("largest is summarised", func(t *testing.T) {
		t.Parallel()
		res := mustCompute(t, matrixJob("a1", "s1", `{"rows":50,"cols":50}`)).(matrixResult)
		if res.Grid != nil || res.Rows != 50 || res.Cols != 50 {
			t.Errorf("a 50x50 grid came back whole")
		}
	})
	t.Run("one cell", func(t *testing.T) {
		t.Parallel()
		res := mustCompute(t, matrixJob("a1", "s1", `{"rows":1,"cols":1,"shock":1}`)).(matrixResult)
		if res.Min != res.Max || res.Min != res.Mean || res.Min <= 0 {
			t.Errorf("one cell: min %v max %v mean %v", res.Min, res.Max, res.Mean)
		}
	})
}

func probJob(id, params string) Job {
	return Job{ID: id, Type: Probability, ScenarioID: "s1", Params: json.RawMessage(params)}
}

func TestProbability(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		params   string
		min, max float64 // bounds on the estimate
	}{
		{name: "target below start", params: `{"start":100,"target":50,"mu":0.05,"sigma":0.2,"years":1}`, min: 0.99, max: 1},
		{name: "target far above", params: `{"start":100,"target":10000,"mu":0,"sigma":0.1,"years":1}`, min: 0, max: 0.001},
		{name: "no volatility, drift reaches", params: `{"start":100,"target":105,"mu":0.1,"sigma":0,"years":1}`, min: 1, max: 1},
		{name: "no volatility, drift falls short", params: `{"start":100,"target":120,"mu":0.1,"sigma":0,"years":1}`, min: 0, max: 0},
		{name: "defaults", params: `{}`, min: 0.2, max: 0.6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := mustCompute(t, probJob("j-p", tt.params)).(probabilityResult)
			if res.Probability < tt.min || res.Probability > tt.max {
				t.Errorf("probability = %v, want in [%v, %v]", res.Probability, tt.min, tt.max)
			}
			if !(res.CI95[0] <= res.Probability && res.Probability <= res.CI95[1]) || res.CI95[0] < 0 || res.CI95[1] > 1 {
				t.Errorf("ci95 %v does not hold %v within [0, 1]", res.CI95, res.Probability)
			}
			// The estimate agrees with the closed form (the interval is 95%,
			// so allow a little beyond it).
			if slack := 2 * (res.CI95[1] - res.CI95[0]); math.Abs(res.Analytic-res.Probability) > slack+1e-6 {
				t.Errorf("analytic %v is far from the estimate %v (ci95 %v)", res.Analytic, res.Probability, res.CI95)
			}
			if res.Trials != 20000 || res.Hits != int(math.Round(res.Probability*20000)) {
				t.Errorf("hits %d of %d for %v", res.Hits, res.Trials, res.Probability)
			}
		})
	}
	t.Run("reproducible from the job id", func(t *testing.T) {
		t.Parallel()
		params := `{"trials":2000}`
		a := mustCompute(t, probJob("j-a", params)).(probabilityResult)
		b := mustCompute(t, probJob("j-a", params)).(probabilityResult)
		if a != b {
			t.Errorf("same job id, different results: %+v, %+v", a, b)
		}
		// Other ids draw other samples: among a few, some hit counts differ.
		differ := false
		for _, id := range []string{"j-b", "j-c", "j-d"} {
			if mustCompute(t, probJob(id, params)).(probabilityResult).Hits != a.Hits {
				differ = true
			}
		}
		if !differ {
			t.Errorf("four job ids gave the same hits")
		}
	})
	t.Run("most trials", func(t *testing.T) {
		t.Parallel()
		res := mustCompute(t, probJob("j-max", `{"trials":200000,"years":100}`)).(probabilityResult)
		if res.Trials != maxTrials {
			t.Errorf("trials = %d", res.Trials)
		}
	})
}

func TestBadParams(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		job  Job
	}{
		{name: "matrix rows 0", job: matrixJob("a", "s", `{"rows":0}`)},
		{name: "matrix rows 51", job: matrixJob("a", "s", `{"rows":51}`)},
		{name: "matrix cols 51", job: matrixJob("a", "s", `{"cols":51}`)},
		{name: "matrix rows not an integer", job: matrixJob("a", "s", `{"rows":2.5}`)},
		{name: "matrix rows a string", job: matrixJob("a", "s", `{"rows":"3"}`)},
		{name: "matrix shock negative", job: matrixJob("a", "s", `{"shock":-0.1}`)},
		{name: "matrix shock over 1", job: matrixJob("a", "s", `{"shock":1.5}`)},
		{name: "matrix unknown param", job: matrixJob("a", "s", `{"row":3}`)},
		{name: "growth rate 2", job: growthJob(`{"rate":2}`)},
		{name: "growth years 101", job: growthJob(`{"years":101}`)},
		{name: "growth years negative", job: growthJob(`{"years":-1}`)},
		{name: "growth principal negative", job: growthJob(`{"principal":-5}`)},
		{name: "growth principal huge", job: growthJob(`{"principal":1e13}`)},
		{name: "growth principal overflows", job: growthJob(`{"principal":1e400}`)},
		{name: "growth contribution a bool", job: growthJob(`{"contribution":true}`)},
		{name: "growth params an array", job: growthJob(`[1]`)},
		{name: "probability trials 0", job: probJob("j", `{"trials":0}`)},
		{name: "probability trials over cap", job: probJob("j", `{"trials":200001}`)},
		{name: "probability sigma negative", job: probJob("j", `{"sigma":-0.1}`)},
		{name: "probability start 0", job: probJob("j", `{"start":0}`)},
		{name: "probability target negative", job: probJob("j", `{"target":-1}`)},
		{name: "probability years 0", job: probJob("j", `{"years":0}`)},
		{name: "probability mu a string", job: probJob("j", `{"mu":"NaN"}`)},
		{name: "probability unknown param", job: probJob("j", `{"seed":1}`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res, err := compute(context.Background(), tt.job, noProgress)
			if !errors.Is(err, ErrBadParams) {
				t.Fatalf("compute = %+v, %v; want ErrBadParams", res, err)
			}
		})
	}
	t.Run("NaN", func(t *testing.T) {
		t.Parallel()
		// JSON has no NaN, but a range check must still refuse one.
		if err := inRange("x", math.NaN(), 0, 1); !errors.Is(err, ErrBadParams) {
			t.Errorf("inRange(NaN) = %v", err)
		}
	})
}

func TestKindsStopWithContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, job := range []Job{matrixJob("a", "s", "{}"), growthJob(`{"years":5}`), probJob("j", "{}")} {
		t.Run(job.Type.String(), func(t *testing.T) {
			t.Parallel()
			if res, err := compute(ctx, job, noProgress); !errors.Is(err, context.Canceled) {
				t.Errorf("compute on a canceled context = %+v, %v", res, err)
			}
		})
	}
	if _, err := compute(context.Background(), Job{Type: 0}, noProgress); err == nil {
		t.Errorf("compute of an unknown type succeeded")
	}
}

// noProgress is a Progress that ignores what it is told.
func noProgress(float64, string) {}
