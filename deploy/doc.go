// Package deploy will render, from a validated config, what running
// switchyard needs around it: an ECS task definition with switchyard as a
// sidecar, a CloudFormation template, a systemd unit for EC2, and the
// least-privilege IAM policy, which package deploy/iam renders
// (iam.Policy). It renders; it never calls AWS.
package deploy
