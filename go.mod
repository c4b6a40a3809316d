module github.com/switchyard-dev/switchyard

go 1.26.8

require (
	go.uber.org/goleak v1.3.0 // indirect
	go.yaml.in/yaml/v3 v3.0.6 // indirect
)
