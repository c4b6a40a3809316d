// Package deploy holds what running switchyard needs around it, as files
// written by hand and checked by this package's tests against the example
// configs: ECS task definitions with switchyard as a sidecar or on its own
// (deploy/ecs), a CloudFormation template (deploy/cloudformation) and a
// systemd unit for EC2 (deploy/systemd). None of them is rendered from a
// config. The one thing rendered is the least-privilege IAM policy, by
// package deploy/iam (iam.Policy, what `switchyard iam-policy` prints); it
// renders, it never calls AWS.
package deploy
