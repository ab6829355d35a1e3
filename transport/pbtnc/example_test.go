package pbtnc_test

import (
	"context"
	"fmt"

	"trustnac/transport/pbtnc"
)

// agent is a one-collector IMC layer.
type agent struct{}

func (agent) Begin(context.Context) ([]pbtnc.PA, error) {
	return []pbtnc.PA{{Subtype: pbtnc.SubtypeOS, CollectorID: 1, ValidatorID: pbtnc.AnyID, Body: []byte("os facts")}}, nil
}

func (agent) Receive(_ context.Context, msgs []pbtnc.PA) ([]pbtnc.PA, error) {
	return nil, nil
}

func (agent) Result(_ context.Context, r pbtnc.Result) error {
	fmt.Println("agent: access", r.Recommendation, "-", r.Reasons[0].Reason)
	return nil
}

// verifier is a one-validator IMV layer that decides on the first batch.
type verifier struct{}

func (verifier) BeginHandshake(context.Context) error { return nil }

func (verifier) Receive(_ context.Context, msgs []pbtnc.PA) ([]pbtnc.PA, *pbtnc.Result, error) {
	fmt.Printf("pdp: got %q\n", msgs[0].Body)
	a := pbtnc.AssessmentCompliant
	return nil, &pbtnc.Result{
		Assessment:     &a,
		Recommendation: pbtnc.RecommendationAllowed,
		Reasons:        []pbtnc.ReasonString{{Reason: "compliant", Lang: "en"}},
	}, nil
}

// Example runs one assessment in memory. A transport would carry the
// batches between the two Step calls instead.
func Example() {
	ctx := context.Background()
	client := pbtnc.NewClient(agent{}, pbtnc.Config{Language: "en", CloseAfterResult: true})
	server := pbtnc.NewServer(verifier{}, pbtnc.Config{})

	batch, err := client.Start(ctx) // CDATA
	for toServer := true; batch != nil && err == nil; toServer = !toServer {
		if toServer {
			batch, err = server.Step(ctx, batch)
		} else {
			batch, err = client.Step(ctx, batch)
		}
	}
	fmt.Println(err, client.State(), server.State(), server.Language())
	// Output:
	// pdp: got "os facts"
	// agent: access allowed - compliant
	// <nil> End End en
}
