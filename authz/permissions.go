package authz

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"os"

	"github.com/finexbot/eventhub/jobs"
)

// Permissions is what one user may see. The zero value sees nothing.
// Immutable once built: share it freely.
type Permissions struct {
	Admin     bool
	Assets    Set
	Scenarios Set
}

// Allows is eventhub's one RBAC rule: an admin sees everything; anyone else
// sees an event only if allowed on every scope the event carries. Ingest has
// already made sure each event carries the scopes its type needs (matrix:
// asset and scenario; growth: asset; probability: scenario). A nil p denies.
func (p *Permissions) Allows(ev *jobs.Event) bool {
	return p.AllowsScope(ev.AssetID, ev.ScenarioID)
}

// AllowsScope applies the same rule to a bare scope ("" = not carried), e.g.
// to a job before it is submitted.
func (p *Permissions) AllowsScope(assetID, scenarioID string) bool {
	if p == nil {
		return false
	}
	if p.Admin {
		return true
	}
	if assetID == "" && scenarioID == "" {
		return false // an unscoped event is for admins only
	}
	if assetID != "" {
		if !p.Assets.Has(assetID) {
			return false
		}
	}
	if scenarioID != "" {
		if !p.Scenarios.Has(scenarioID) {
			return false
		}
	}
	return true
}

// None reports whether p can see no event at all.
func (p *Permissions) None() bool {
	return p == nil || !p.Admin && p.Assets.Len() == 0 && p.Scenarios.Len() == 0
}

// Table maps user ids to their permissions. Immutable once built.
type Table struct {
	users map[string]*Permissions
}

// Lookup returns the user's permissions, or nil and false for a user the
// table does not name.
func (t *Table) Lookup(user string) (*Permissions, bool) {
	p, ok := t.users[user]
	return p, ok
}

// Len is the number of users in the table.
func (t *Table) Len() int { return len(t.users) }

type userDoc struct {
	Admin     bool     `json:"admin"`
	Assets    []string `json:"assets"`
	Scenarios []string `json:"scenarios"`
}

// ParseTable decodes a permissions document:
//
//	{"users": {"alice": {"assets": ["a1"], "scenarios": ["s1"]}, "ops": {"admin": true}}}
//
// Unknown fields and ids outside jobs.CheckID's charset are errors, so a typo
// does not silently grant or withhold access.
func ParseTable(data []byte) (*Table, error) {
	var doc struct {
		Users map[string]userDoc `json:"users"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadPermissions, err)
	}
	if doc.Users == nil {
		return nil, fmt.Errorf("%w: no \"users\" object", ErrBadPermissions)
	}
	t := &Table{users: make(map[string]*Permissions, len(doc.Users))}
	var sh sharer
	for user, u := range doc.Users {
		if err := CheckUserID(user); err != nil {
			return nil, fmt.Errorf("%w: user %q: %v", ErrBadPermissions, user, err)
		}
		p, err := u.permissions()
		if err != nil {
			return nil, fmt.Errorf("%w: user %q: %v", ErrBadPermissions, user, err)
		}
		t.users[user] = sh.share(p)
	}
	return t, nil
}

// sharer makes a table's users share what they have in common: one
// Permissions for the users granted the same, and one string for an id that
// many are granted. A table of tens of thousands of users then costs little
// more than their names.
type sharer struct {
	perms map[string]*Permissions // by key
	ids   map[string]string
	key   []byte
}

func (sh *sharer) share(p *Permissions) *Permissions {
	if sh.perms == nil {
		sh.perms, sh.ids = map[string]*Permissions{}, map[string]string{}
	}
	k := append(sh.key[:0], '0')
	if p.Admin {
		k[0] = '1'
	}
	for _, set := range []Set{p.Assets, p.Scenarios} {
		for _, id := range set.ids {
			k = append(append(k, id...), 0) // ids hold no NUL (jobs.CheckID)
		}
		k = append(k, 1)
	}
	sh.key = k
	if q, ok := sh.perms[string(k)]; ok {
		return q
	}
	for _, set := range []Set{p.Assets, p.Scenarios} {
		for i, id := range set.ids {
			if s, ok := sh.ids[id]; ok {
				set.ids[i] = s
			} else {
				sh.ids[id] = id
			}
		}
	}
	sh.perms[string(k)] = p
	return p
}

// permissions checks one user's document and builds their Permissions.
func (u userDoc) permissions() (*Permissions, error) {
	for _, a := range u.Assets {
		if err := jobs.CheckID(a); err != nil {
			return nil, fmt.Errorf("asset %q: %v", a, err)
		}
	}
	for _, s := range u.Scenarios {
		if err := jobs.CheckID(s); err != nil {
			return nil, fmt.Errorf("scenario %q: %v", s, err)
		}
	}
	return &Permissions{Admin: u.Admin, Assets: NewSet(u.Assets...), Scenarios: NewSet(u.Scenarios...)}, nil
}

// parseUser decodes one user's permissions: {"assets":[…],"scenarios":[…],"admin":…}.
func parseUser(data []byte) (*Permissions, error) {
	var u userDoc
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&u); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadPermissions, err)
	}
	p, err := u.permissions()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadPermissions, err)
	}
	return p, nil
}

// Equal reports whether p and q grant the same.
func (p *Permissions) Equal(q *Permissions) bool {
	if p == nil || q == nil {
		return p == q
	}
	return p.Admin == q.Admin && p.Assets.Equal(q.Assets) && p.Scenarios.Equal(q.Scenarios)
}

// LoadTable reads and parses a permissions file.
func LoadTable(path string) (*Table, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read permissions: %w", err)
	}
	t, err := ParseTable(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

//go:embed demo_permissions.json
var demoPermissions []byte

// DemoTable is the built-in table used when no permissions file is given:
// alice, bob and carol see parts of the demo assets a1–a3 and scenarios
// s1–s3; ops is an admin.
func DemoTable() *Table {
	t, err := ParseTable(demoPermissions)
	if err != nil {
		panic("BUG: built-in demo permissions: " + err.Error())
	}
	return t
}

// DemoScopes returns the assets and scenarios the demo table mentions, for
// demo jobs.
func DemoScopes() (assets, scenarios []string) {
	return []string{"a1", "a2", "a3"}, []string{"s1", "s2", "s3"}
}
