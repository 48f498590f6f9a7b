package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"math/big"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// tokenProvider issues and checks auth tokens (--auth-token).
type tokenProvider interface {
	// prefix is what the proposer of an Authenticate adds to the request,
	// so that every member assigns the same simple token.
	prefix() (string, error)
	// assign issues a token to user at auth revision rev; index is the
	// raft index of the Authenticate entry.
	assign(user string, rev, index uint64, prefix string) (string, error)
	info(ctx context.Context, token string, rev uint64) (*authInfo, bool)
	invalidateUser(user string)
	disable()
}

// newTokenProvider parses --auth-token: simple, or
// jwt,pub-key=..,priv-key=..,sign-method=..[,ttl=..].
func newTokenProvider(spec string, ttl time.Duration, applied func(uint64) <-chan struct{}) (tokenProvider, error) {
	typ, opts, err := parseAuthToken(spec)
	if err != nil {
		return nil, err
	}
	switch typ {
	case "simple":
		if len(opts) > 0 {
			return nil, fmt.Errorf("--auth-token simple takes no options")
		}
		return &simpleTokens{ttl: ttl, applied: applied, epoch: time.Now(), tokens: map[string]*simpleToken{}}, nil
	case "jwt":
		return newJWTTokens(opts)
	}
	return nil, fmt.Errorf("--auth-token %q: want simple or jwt,...", spec)
}

// simpleTokens are etcd's simple tokens: a random prefix and the raft index
// of the Authenticate entry, kept in memory by every member, each valid for
// the TTL after its last use.
type simpleTokens struct {
	ttl     time.Duration
	applied func(uint64) <-chan struct{}
	epoch   time.Time // deadlines are monotonic offsets from it

	// mu guards the map and lastSweep; every request looks its token up,
	// so lookups share it and a use extends the deadline atomically.
	mu     sync.RWMutex
	tokens map[string]*simpleToken
	// lastSweep is when assign last dropped the expired tokens: a client
	// that authenticates for each command (etcdctl does) never uses its
	// token again, so only a sweep forgets it.
	lastSweep time.Duration
}

type simpleToken struct {
	user     string
	deadline atomic.Int64 // time.Duration since epoch
}

const simpleTokenLetters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

func (t *simpleTokens) prefix() (string, error) {
	b := make([]byte, 16)
	for i := range b {
		n, err := rand.Int(rand.Reader, big.NewInt(int64(len(simpleTokenLetters))))
		if err != nil {
			return "", fmt.Errorf("server: token prefix: %w", err)
		}
		b[i] = simpleTokenLetters[n.Int64()]
	}
	return string(b), nil
}

func (t *simpleTokens) assign(user string, _, index uint64, prefix string) (string, error) {
	tok := fmt.Sprintf("%s.%d", prefix, index)
	now := time.Since(t.epoch)
	st := &simpleToken{user: user}
	st.deadline.Store(int64(now + t.ttl))
	t.mu.Lock()
	defer t.mu.Unlock()
	if now-t.lastSweep >= t.ttl {
		t.sweep(now)
	}
	t.tokens[tok] = st
	return tok, nil
}

// sweep drops the tokens expired at now, at most once a TTL (so the
// tokens held are those used or issued in the last two TTLs). It needs mu.
func (t *simpleTokens) sweep(now time.Duration) {
	for k, v := range t.tokens {
		if int64(now) > v.deadline.Load() {
			delete(t.tokens, k)
		}
	}
	t.lastSweep = now
}

// info waits until this member has applied the entry that issued the token,
// then looks it up and extends its life.
func (t *simpleTokens) info(ctx context.Context, token string, rev uint64) (*authInfo, bool) {
	_, idx, ok := strings.Cut(token, ".")
	index, err := strconv.ParseUint(idx, 10, 64)
	if !ok || err != nil {
		return nil, false
	}
	select {
	case <-t.applied(index):
	case <-ctx.Done():
		return nil, false
	}
	t.mu.RLock()
	st := t.tokens[token]
	t.mu.RUnlock()
	if st == nil {
		return nil, false
	}
	now := time.Since(t.epoch)
	if int64(now) > st.deadline.Load() {
		t.mu.Lock()
		if t.tokens[token] == st {
			delete(t.tokens, token)
		}
		t.mu.Unlock()
		return nil, false
	}
	st.deadline.Store(int64(now + t.ttl))
	return &authInfo{user: st.user, revision: rev}, true
}

func (t *simpleTokens) invalidateUser(user string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, v := range t.tokens {
		if v.user == user {
			delete(t.tokens, k)
		}
	}
}

func (t *simpleTokens) disable() {
	t.mu.Lock()
	t.tokens = map[string]*simpleToken{}
	t.mu.Unlock()
}

// jwtTokens are signed JWTs carrying the user and the auth revision, as
// etcd's (claims username, revision, exp).
type jwtTokens struct {
	method     jwt.SigningMethod
	signKey    any // nil: verify only
	verifyKey  any
	ttl        time.Duration
	verifyOnly bool
}

func newJWTTokens(opts map[string]string) (*jwtTokens, error) {
	t := &jwtTokens{ttl: 5 * time.Minute}
	for k, v := range opts {
		switch k {
		case "pub-key", "priv-key":
		case "sign-method":
			t.method = jwt.GetSigningMethod(v)
			if t.method == nil {
				return nil, fmt.Errorf("--auth-token: sign-method %q: auth: invalid auth signature method", v)
			}
		case "ttl":
			d, err := time.ParseDuration(v)
			if err != nil {
				return nil, fmt.Errorf("--auth-token: ttl %q: %w", v, err)
			}
			t.ttl = d
		default:
			return nil, fmt.Errorf("--auth-token: unknown JWT option %q", k)
		}
	}
	if t.method == nil {
		return nil, errors.New("--auth-token jwt needs sign-method")
	}
	read := func(k string) ([]byte, error) {
		if opts[k] == "" {
			return nil, nil
		}
		b, err := os.ReadFile(opts[k])
		if err != nil {
			return nil, fmt.Errorf("--auth-token: %s: %w", k, err)
		}
		return b, nil
	}
	pub, err := read("pub-key")
	if err != nil {
		return nil, err
	}
	priv, err := read("priv-key")
	if err != nil {
		return nil, err
	}
	if pub == nil && priv == nil {
		return nil, errors.New("--auth-token jwt: auth: missing key data (pub-key or priv-key)")
	}
	if err := t.loadKeys(pub, priv); err != nil {
		return nil, fmt.Errorf("--auth-token jwt: %w", err)
	}
	return t, nil
}

// loadKeys parses the PEM keys for the signing method; a public key alone
// makes a verify-only provider.
func (t *jwtTokens) loadKeys(pub, priv []byte) error {
	var err error
	switch t.method.(type) {
	case *jwt.SigningMethodHMAC:
		if priv == nil {
			return errors.New("auth: missing key data (priv-key)")
		}
		t.signKey, t.verifyKey = priv, priv
		return nil
	case *jwt.SigningMethodRSA, *jwt.SigningMethodRSAPSS:
		if priv != nil {
			k, perr := jwt.ParseRSAPrivateKeyFromPEM(priv)
			if perr != nil {
				return perr
			}
			t.signKey, t.verifyKey = k, &k.PublicKey
		}
		if pub != nil {
			var k *rsa.PublicKey
			if k, err = jwt.ParseRSAPublicKeyFromPEM(pub); err != nil {
				return err
			}
			if sk, ok := t.signKey.(*rsa.PrivateKey); ok && !sk.PublicKey.Equal(k) {
				return errors.New("auth: public and private keys don't match")
			}
			t.verifyKey = k
		}
	case *jwt.SigningMethodECDSA:
		if priv != nil {
			k, perr := jwt.ParseECPrivateKeyFromPEM(priv)
			if perr != nil {
				return perr
			}
			t.signKey, t.verifyKey = k, &k.PublicKey
		}
		if pub != nil {
			var k *ecdsa.PublicKey
			if k, err = jwt.ParseECPublicKeyFromPEM(pub); err != nil {
				return err
			}
			if sk, ok := t.signKey.(*ecdsa.PrivateKey); ok && !sk.PublicKey.Equal(k) {
				return errors.New("auth: public and private keys don't match")
			}
			t.verifyKey = k
		}
	case *jwt.SigningMethodEd25519:
		if priv != nil {
			k, perr := jwt.ParseEdPrivateKeyFromPEM(priv)
			if perr != nil {
				return perr
			}
			sk := k.(ed25519.PrivateKey)
			t.signKey, t.verifyKey = sk, sk.Public()
		}
		if pub != nil {
			k, perr := jwt.ParseEdPublicKeyFromPEM(pub)
			if perr != nil {
				return perr
			}
			t.verifyKey = k
		}
	default:
		return fmt.Errorf("unsupported signing method %s", t.method.Alg())
	}
	t.verifyOnly = t.signKey == nil
	return nil
}

func (t *jwtTokens) prefix() (string, error) { return "", nil }

func (t *jwtTokens) assign(user string, rev, _ uint64, _ string) (string, error) {
	if t.verifyOnly {
		return "", errors.New("auth: token signing attempted with verify-only key")
	}
	return jwt.NewWithClaims(t.method, jwt.MapClaims{
		"username": user,
		"revision": rev,
		"exp":      time.Now().Add(t.ttl).Unix(),
	}).SignedString(t.signKey)
}

func (t *jwtTokens) info(_ context.Context, token string, _ uint64) (*authInfo, bool) {
	parsed, err := jwt.Parse(token, func(*jwt.Token) (any, error) { return t.verifyKey, nil },
		jwt.WithValidMethods([]string{t.method.Alg()}))
	if err != nil || !parsed.Valid {
		return nil, false
	}
	claims, ok := parsed.Claims.(jwt.MapClaims)
	if !ok {
		return nil, false
	}
	user, ok := claims["username"].(string)
	if !ok {
		return nil, false
	}
	rev, ok := claims["revision"].(float64)
	if !ok {
		return nil, false
	}
	return &authInfo{user: user, revision: uint64(rev)}, true
}

func (t *jwtTokens) invalidateUser(string) {}
func (t *jwtTokens) disable()              {}
