package jobs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"time"
)

// What each job kind computes. Each is small and bounded in time: params that
// size the work have hard caps, and every loop checks the context, so a job
// ends by its deadline whatever it was asked. Every param has a default, so
// "{}" (or no params) is a valid job of each kind. The results are small
// (well under MaxDataSize encoded) and deterministic for a given job, so a
// job run twice gives the same result.
//
// The functions here own no state and are safe for concurrent use.

// compute runs job's kind and returns its result, a value that encodes to a
// JSON object, telling report how far it got as it goes. Bad params give an
// error wrapping ErrBadParams; a done context gives ctx.Err().
func compute(ctx context.Context, job Job, report Progress) (any, error) {
	switch job.Type {
	case Matrix:
		return runMatrix(ctx, job, report)
	case Growth:
		return runGrowth(ctx, job, report)
	case Probability:
		return runProbability(ctx, job, report)
	}
	return nil, fmt.Errorf("unknown job type %v", job.Type)
}

// Progress is told how far a running job got: a fraction from 0 to 1 and a
// short message for people. It may be called as often as a computation
// likes; the workers publish at most one progress event a job every
// progressEvery.
type Progress func(fraction float64, message string)

// waitShare is the part of a job's progress its delay (delayMs) stands for:
// the delay is the slow part of a demo job, the computation the fast rest.
const waitShare = 0.9

// tick is how often a job waiting out its delay reports progress.
const tick = 100 * time.Millisecond

// commonParams are the params every kind takes.
type commonParams struct {
	// DelayMs makes the job take at least this long (0–10,000 ms) before it
	// computes: a demo dashboard shows jobs running, and a test can catch
	// one mid-run.
	DelayMs int `json:"delayMs"`
}

const maxDelayMs = 10_000

// wait sleeps DelayMs, or until ctx is done, reporting its progress every
// tick. It returns the part of the job's progress done: what the
// computation that follows goes on from.
func (c commonParams) wait(ctx context.Context, report Progress) (done float64, err error) {
	if c.DelayMs < 0 || c.DelayMs > maxDelayMs {
		return 0, fmt.Errorf("%w: delayMs: %d is not in [0, %d]", ErrBadParams, c.DelayMs, maxDelayMs)
	}
	if c.DelayMs == 0 {
		return 0, nil
	}
	delay := time.Duration(c.DelayMs) * time.Millisecond
	start := time.Now()
	t := time.NewTimer(delay)
	defer t.Stop()
	every := time.NewTicker(tick)
	defer every.Stop()
	for {
		select {
		case <-t.C:
			return waitShare, nil
		case <-every.C:
			report(waitShare*float64(time.Since(start))/float64(delay), "working")
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

// step reports step i (from 0) of n of the computation that goes on from
// done.
func step(report Progress, done float64, i, n int, what string) {
	report(done+(1-done)*float64(i)/float64(n), fmt.Sprintf("%s %d of %d", what, i, n))
}

// decodeParams decodes a job's params over dst, which holds the defaults:
// a param that is absent (or null) keeps its default. Unknown params are
// rejected, so a typo is an error rather than a silent default.
func decodeParams(raw json.RawMessage, dst any) error {
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			if typeErr.Field == "" {
				return fmt.Errorf("%w: params must be an object, not %s", ErrBadParams, typeErr.Value)
			}
			want := jsonKind(typeErr.Type)
			got, isNumber := strings.CutPrefix(typeErr.Value, "number ")
			if isNumber && want == "a number" {
				return fmt.Errorf("%w: %s: %s is out of range", ErrBadParams, typeErr.Field, got)
			}
			return fmt.Errorf("%w: %s: must be %s, not %s", ErrBadParams, typeErr.Field, want, got)
		}
		if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return fmt.Errorf("%w: unknown param %s", ErrBadParams, name)
		}
		return fmt.Errorf("%w: %v", ErrBadParams, err)
	}
	return nil
}

// jsonKind names what JSON value decodes into t, for messages.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array"
	}
	return t.String()
}

// inRange checks lo <= v <= hi; NaN is never in range.
func inRange(name string, v, lo, hi float64) error {
	if !(v >= lo && v <= hi) {
		return fmt.Errorf("%w: %s: %v is not in [%v, %v]", ErrBadParams, name, v, lo, hi)
	}
	return nil
}

// round rounds x to the given number of decimals, to keep results short.
func round(x float64, decimals int) float64 {
	p := math.Pow10(decimals)
	r := math.Round(x*p) / p
	if math.IsInf(r, 0) || math.IsNaN(r) { // x*p overflowed: x has no decimals left to drop
		return x
	}
	return r
}

// Limits on params that size the work.
const (
	maxMatrixSide    = 50     // rows, cols
	maxGridCells     = 400    // cells of a grid returned whole (20×20)
	maxGrowthYears   = 100    // years of a growth projection
	maxTrials        = 200000 // Monte Carlo trials
	maxProbYears     = 100    // horizon of a probability job
	maxAmount        = 1e12   // principal, contribution, start, target
	checkEveryTrials = 1024   // trials between two context checks
)

// matrixParams are a matrix job's params: a grid of rows horizon steps by
// cols stress levels, the last level losing shock of the value.
type matrixParams struct {
	commonParams
	Rows  int     `json:"rows"`
	Cols  int     `json:"cols"`
	Shock float64 `json:"shock"`
}

type matrixResult struct {
	Rows int     `json:"rows"`
	Cols int     `json:"cols"`
	Min  float64 `json:"min"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
	// Grid is the whole grid, rows of cols values, when it has at most
	// maxGridCells cells; larger grids are summarised only.
	Grid [][]float64 `json:"grid,omitempty"`
}

// runMatrix computes a value grid for an asset under a scenario. The base
// value and the small noise on each cell derive from hashes of the ids, so
// the same asset and scenario always give the same grid: row i is a horizon
// step (value drifting up by up to 5% over the rows), column j a stress level
// (value cut by shock·j/(cols-1), so the last column loses all of shock).
func runMatrix(ctx context.Context, job Job, report Progress) (any, error) {
	p := matrixParams{Rows: 10, Cols: 10, Shock: 0.2}
	if err := decodeParams(job.Params, &p); err != nil {
		return nil, err
	}
	done, err := p.wait(ctx, report)
	if err != nil {
		return nil, err
	}
	if p.Rows < 1 || p.Rows > maxMatrixSide {
		return nil, fmt.Errorf("%w: rows: %d is not in [1, %d]", ErrBadParams, p.Rows, maxMatrixSide)
	}
	if p.Cols < 1 || p.Cols > maxMatrixSide {
		return nil, fmt.Errorf("%w: cols: %d is not in [1, %d]", ErrBadParams, p.Cols, maxMatrixSide)
	}
	if err := inRange("shock", p.Shock, 0, 1); err != nil {
		return nil, err
	}

	seed := hashString(job.AssetID + "\x00" + job.ScenarioID)
	base := 50 + 100*unit(seed)
	keepGrid := p.Rows*p.Cols <= maxGridCells
	res := matrixResult{Rows: p.Rows, Cols: p.Cols, Min: math.Inf(1), Max: math.Inf(-1)}
	sum := 0.0
	for i := range p.Rows {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		step(report, done, i, p.Rows, "row")
		var row []float64
		if keepGrid {
			row = make([]float64, p.Cols)
		}
		drift := 1 + 0.05*float64(i)/float64(max(p.Rows-1, 1))
		for j := range p.Cols {
			stress := 1 - p.Shock*float64(j)/float64(max(p.Cols-1, 1))
			noise := 1 + 0.02*(2*unit(mix(seed, uint64(i), uint64(j)))-1)
			v := round(base*drift*stress*noise, 4)
			res.Min, res.Max = min(res.Min, v), max(res.Max, v)
			sum += v
			if keepGrid {
				row[j] = v
			}
		}
		if keepGrid {
			res.Grid = append(res.Grid, row)
		}
	}
	res.Mean = round(sum/float64(p.Rows*p.Cols), 4)
	return res, nil
}

// hashString is FNV-1a, 64 bits: stable across runs and versions, unlike
// hash/maphash.
func hashString(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}

// mix derives a well-spread value from a seed and two indices (SplitMix64's
// finaliser over their combination).
func mix(seed, i, j uint64) uint64 {
	z := seed ^ (i+1)*0x9e3779b97f4a7c15 ^ (j+1)*0xc2b2ae3d27d4eb4f
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// unit maps a hash to [0, 1).
func unit(h uint64) float64 { return float64(h>>11) / (1 << 53) }

// growthParams are a growth job's params: principal compounding at rate a
// year for years, with contribution added at the end of each year.
type growthParams struct {
	commonParams
	Principal    float64 `json:"principal"`
	Rate         float64 `json:"rate"`
	Years        int     `json:"years"`
	Contribution float64 `json:"contribution"`
}

type growthResult struct {
	// Values holds the value at the start (index 0) and at the end of each
	// year, rounded to cents.
	Values      []float64 `json:"values"`
	Final       float64   `json:"final"`
	Contributed float64   `json:"contributed"` // principal plus contributions
	Gain        float64   `json:"gain"`        // final minus contributed
}

// runGrowth projects compound growth year by year.
func runGrowth(ctx context.Context, job Job, report Progress) (any, error) {
	p := growthParams{Principal: 1000, Rate: 0.05, Years: 10}
	if err := decodeParams(job.Params, &p); err != nil {
		return nil, err
	}
	done, err := p.wait(ctx, report)
	if err != nil {
		return nil, err
	}
	if err := inRange("principal", p.Principal, 0, maxAmount); err != nil {
		return nil, err
	}
	if err := inRange("rate", p.Rate, -1, 1); err != nil {
		return nil, err
	}
	if p.Years < 0 || p.Years > maxGrowthYears {
		return nil, fmt.Errorf("%w: years: %d is not in [0, %d]", ErrBadParams, p.Years, maxGrowthYears)
	}
	if err := inRange("contribution", p.Contribution, -maxAmount, maxAmount); err != nil {
		return nil, err
	}

	values := make([]float64, 0, p.Years+1)
	v := p.Principal
	values = append(values, round(v, 2))
	for y := range p.Years {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		step(report, done, y, p.Years, "year")
		v = v*(1+p.Rate) + p.Contribution
		values = append(values, round(v, 2))
	}
	// With the caps above v stays below 1e12·2^100 ≈ 1.3e42: always finite.
	contributed := p.Principal + p.Contribution*float64(p.Years)
	final := values[len(values)-1]
	return growthResult{
		Values:      values,
		Final:       final,
		Contributed: round(contributed, 2),
		Gain:        round(final-contributed, 2),
	}, nil
}

// probabilityParams are a probability job's params: a value following a
// geometric Brownian motion from start, with yearly drift mu and volatility
// sigma, observed after years.
type probabilityParams struct {
	commonParams
	Start  float64 `json:"start"`
	Target float64 `json:"target"`
	Mu     float64 `json:"mu"`
	Sigma  float64 `json:"sigma"`
	Years  float64 `json:"years"`
	Trials int     `json:"trials"`
}

type probabilityResult struct {
	// Probability is the Monte Carlo estimate that the value after years is
	// at least target; CI95 its 95% Wilson score interval.
	Probability float64    `json:"probability"`
	CI95        [2]float64 `json:"ci95"`
	Hits        int        `json:"hits"`
	Trials      int        `json:"trials"`
	// Analytic is the closed-form probability, for comparison.
	Analytic float64 `json:"analytic"`
}

// runProbability estimates by Monte Carlo the probability that a value
// starting at start is at or above target after years. The random source is
// seeded from the job id, so a job's result is reproducible.
func runProbability(ctx context.Context, job Job, report Progress) (any, error) {
	p := probabilityParams{Start: 100, Target: 120, Mu: 0.05, Sigma: 0.2, Years: 5, Trials: 20000}
	if err := decodeParams(job.Params, &p); err != nil {
		return nil, err
	}
	done, err := p.wait(ctx, report)
	if err != nil {
		return nil, err
	}
	if err := inRange("start", p.Start, math.SmallestNonzeroFloat64, maxAmount); err != nil {
		return nil, err
	}
	if err := inRange("target", p.Target, math.SmallestNonzeroFloat64, maxAmount); err != nil {
		return nil, err
	}
	if err := inRange("mu", p.Mu, -1, 1); err != nil {
		return nil, err
	}
	if err := inRange("sigma", p.Sigma, 0, 2); err != nil {
		return nil, err
	}
	if err := inRange("years", p.Years, math.SmallestNonzeroFloat64, maxProbYears); err != nil {
		return nil, err
	}
	if p.Trials < 1 || p.Trials > maxTrials {
		return nil, fmt.Errorf("%w: trials: %d is not in [1, %d]", ErrBadParams, p.Trials, maxTrials)
	}

	// ln(S_T/S_0) = (mu - sigma²/2)·T + sigma·√T·Z, Z standard normal; the
	// value reaches target when that log return is at least ln(target/start).
	drift := (p.Mu - p.Sigma*p.Sigma/2) * p.Years
	vol := p.Sigma * math.Sqrt(p.Years)
	need := math.Log(p.Target / p.Start)
	h := hashString(job.ID)
	rng := rand.New(rand.NewPCG(h, mix(h, 0, 0)))
	hits := 0
	for i := range p.Trials {
		if i%checkEveryTrials == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			step(report, done, i, p.Trials, "trial")
		}
		if drift+vol*rng.NormFloat64() >= need {
			hits++
		}
	}

	n := float64(p.Trials)
	est := float64(hits) / n
	lo, hi := wilson(est, n, 1.959963984540054)
	analytic := 0.0
	switch {
	case vol > 0:
		analytic = 0.5 * math.Erfc(-(drift-need)/vol/math.Sqrt2)
	case drift >= need:
		analytic = 1
	}
	return probabilityResult{
		Probability: round(est, 6),
		CI95:        [2]float64{round(lo, 6), round(hi, 6)},
		Hits:        hits,
		Trials:      p.Trials,
		Analytic:    round(analytic, 6),
	}, nil
}

// wilson returns the Wilson score interval for a proportion p observed over
// n trials, at the confidence of the normal quantile z. Unlike p ± z·σ it
// stays within [0, 1] and is not empty when p is 0 or 1.
func wilson(p, n, z float64) (lo, hi float64) {
	z2 := z * z
	denom := 1 + z2/n
	center := (p + z2/(2*n)) / denom
	half := z * math.Sqrt(p*(1-p)/n+z2/(4*n*n)) / denom
	return max(center-half, 0), min(center+half, 1)
}
