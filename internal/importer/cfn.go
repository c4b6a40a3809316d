package importer

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// cfnTemplate is a CloudFormation template being read: its sections, and
// what evaluating its intrinsic functions needs.
type cfnTemplate struct {
	file       string
	opt        Options
	params     map[string]*yaml.Node
	mappings   *yaml.Node
	conditions map[string]*yaml.Node
	resources  map[string]*cfnResource
	order      []string // resources' logical IDs, in the template's order
	transform  string

	refs     map[string]*envRef // by variable, so a value read twice is one variable
	condVals map[string]bool
	condBusy map[string]bool
	notes    []string
}

type cfnResource struct {
	id, typ string
	props   *yaml.Node // nil when the resource has none
	cond    string
	line    int
}

// noValue is what AWS::NoValue evaluates to: the property is left out.
var noValue = &value{}

// cfnError is a problem at a place in the template.
type cfnError struct {
	line int
	msg  string
}

func (e *cfnError) Error() string {
	if e.line > 0 {
		return fmt.Sprintf("line %d: %s", e.line, e.msg)
	}
	return e.msg
}

func errAt(n *yaml.Node, format string, args ...any) error {
	line := 0
	if n != nil {
		line = n.Line
	}
	return &cfnError{line: line, msg: fmt.Sprintf(format, args...)}
}

// parseTemplate reads a template in YAML (with CloudFormation's short-form
// tags) or JSON. Its errors make the input unreadable.
func parseTemplate(file string, data []byte, opt Options) (*cfnTemplate, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("the file is empty")
		}
		return nil, fmt.Errorf("not YAML or JSON: %v", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var more yaml.Node
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		return nil, errors.New("a template is one YAML document, found another")
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, errors.New("not a CloudFormation template: want a mapping with Resources")
	}
	if err := checkNodes(doc.Content[0]); err != nil {
		return nil, err
	}
	t := &cfnTemplate{file: file, opt: opt, params: map[string]*yaml.Node{}, conditions: map[string]*yaml.Node{},
		resources: map[string]*cfnResource{}, refs: map[string]*envRef{}, condVals: map[string]bool{}, condBusy: map[string]bool{}}
	root := doc.Content[0]
	var resources *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		switch k.Value {
		case "Parameters":
			if v.Kind != yaml.MappingNode {
				return nil, errAt(v, "Parameters must be a mapping")
			}
			for j := 0; j+1 < len(v.Content); j += 2 {
				t.params[v.Content[j].Value] = v.Content[j+1]
			}
		case "Mappings":
			t.mappings = v
		case "Conditions":
			if v.Kind != yaml.MappingNode {
				return nil, errAt(v, "Conditions must be a mapping")
			}
			for j := 0; j+1 < len(v.Content); j += 2 {
				t.conditions[v.Content[j].Value] = v.Content[j+1]
			}
		case "Transform":
			if v.Kind == yaml.ScalarNode {
				t.transform = v.Value
			} else {
				var names []string
				for _, c := range v.Content {
					names = append(names, c.Value)
				}
				t.transform = strings.Join(names, ", ")
			}
		case "Resources":
			resources = v
		}
	}
	if resources == nil || resources.Kind != yaml.MappingNode {
		return nil, errors.New("not a CloudFormation template: it has no Resources")
	}
	for i := 0; i+1 < len(resources.Content); i += 2 {
		k, v := resources.Content[i], resources.Content[i+1]
		if v.Kind != yaml.MappingNode {
			return nil, errAt(v, "resource %s is not a mapping", k.Value)
		}
		r := &cfnResource{id: k.Value, line: k.Line}
		for j := 0; j+1 < len(v.Content); j += 2 {
			switch v.Content[j].Value {
			case "Type":
				r.typ = v.Content[j+1].Value
			case "Properties":
				r.props = v.Content[j+1]
			case "Condition":
				r.cond = v.Content[j+1].Value
			}
		}
		if r.typ == "" {
			return nil, errAt(k, "resource %s has no Type", k.Value)
		}
		t.resources[r.id] = r
		t.order = append(t.order, r.id)
	}
	return t, nil
}

// checkNodes refuses what CloudFormation refuses: YAML aliases and a key
// given twice in a mapping.
func checkNodes(n *yaml.Node) error {
	switch n.Kind {
	case yaml.AliasNode:
		return errAt(n, "a YAML alias (*%s): CloudFormation does not take them", n.Value)
	case yaml.MappingNode:
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			if seen[k] {
				return errAt(n.Content[i], "key %q given twice", k)
			}
			seen[k] = true
		}
	}
	for _, c := range n.Content {
		if err := checkNodes(c); err != nil {
			return err
		}
	}
	return nil
}

// shortTags are CloudFormation's short-form tags and their functions.
var shortTags = map[string]string{
	"!Ref": "Ref", "!Condition": "Condition", "!GetAtt": "Fn::GetAtt", "!Sub": "Fn::Sub", "!Join": "Fn::Join",
	"!Select": "Fn::Select", "!Split": "Fn::Split", "!If": "Fn::If", "!Equals": "Fn::Equals", "!Not": "Fn::Not",
	"!And": "Fn::And", "!Or": "Fn::Or", "!FindInMap": "Fn::FindInMap", "!ImportValue": "Fn::ImportValue",
	"!Base64": "Fn::Base64", "!GetAZs": "Fn::GetAZs", "!Cidr": "Fn::Cidr", "!ToJsonString": "Fn::ToJsonString",
	"!Length": "Fn::Length",
}

// intrinsic reports whether n is a call of an intrinsic function, by tag
// or as a one-key mapping, and returns its name and argument.
func intrinsic(n *yaml.Node) (name string, arg *yaml.Node, ok bool) {
	if strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
		if long, ok := shortTags[n.Tag]; ok {
			return long, untagged(n), true
		}
		return n.Tag, untagged(n), true // unknown: reported when evaluated
	}
	if n.Kind == yaml.MappingNode && len(n.Content) == 2 {
		k := n.Content[0].Value
		if k == "Ref" || k == "Condition" || strings.HasPrefix(k, "Fn::") {
			return k, n.Content[1], true
		}
	}
	return "", nil, false
}

// untagged is n without its tag, typed as YAML would type it.
func untagged(n *yaml.Node) *yaml.Node {
	c := *n
	switch c.Kind {
	case yaml.ScalarNode:
		c.Tag = "!!str"
	case yaml.SequenceNode:
		c.Tag = "!!seq"
	case yaml.MappingNode:
		c.Tag = "!!map"
	}
	return &c
}

// eval evaluates a node of the template into a value, resolving intrinsic
// functions. What cannot be resolved becomes a reference to the
// environment; what cannot be evaluated at all is an error.
func (t *cfnTemplate) eval(n *yaml.Node) (*value, error) {
	if name, arg, ok := intrinsic(n); ok {
		return t.call(n, name, arg)
	}
	switch n.Kind {
	case yaml.MappingNode:
		v := &value{kind: kObject, line: n.Line}
		for i := 0; i+1 < len(n.Content); i += 2 {
			e, err := t.eval(n.Content[i+1])
			if err != nil {
				return nil, err
			}
			if e == noValue {
				continue
			}
			v.keys = append(v.keys, n.Content[i].Value)
			v.vals = append(v.vals, e)
		}
		return v, nil
	case yaml.SequenceNode:
		v := &value{kind: kArray, line: n.Line}
		for _, c := range n.Content {
			e, err := t.eval(c)
			if err != nil {
				return nil, err
			}
			if e != noValue {
				v.vals = append(v.vals, e)
			}
		}
		return v, nil
	case yaml.ScalarNode:
		return scalar(n)
	}
	return nil, errAt(n, "unexpected YAML")
}

// scalar turns a plain YAML scalar into a JSON value.
func scalar(n *yaml.Node) (*value, error) {
	v := &value{line: n.Line}
	switch n.ShortTag() {
	case "!!null":
		v.kind = kNull
	case "!!bool":
		v.kind = kBool
		v.b, _ = strconv.ParseBool(strings.ToLower(n.Value))
	case "!!int", "!!float":
		v.kind = kNumber
		if f, err := strconv.ParseFloat(strings.ReplaceAll(n.Value, "_", ""), 64); err == nil && jsonNumber(n.Value) {
			v.num = n.Value
		} else if i, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64); err == nil {
			v.num = strconv.FormatInt(i, 10)
		} else if err == nil {
			v.num = strconv.FormatFloat(f, 'g', -1, 64)
		} else {
			return nil, errAt(n, "%s is not a number JSON can hold", n.Value)
		}
	default:
		v.kind = kString
		v.str = lit(n.Value)
	}
	return v, nil
}

// jsonNumber reports whether s is written as JSON writes numbers.
func jsonNumber(s string) bool {
	return strings.TrimSpace(s) == s && s != "" && (s[0] == '-' || s[0] >= '0' && s[0] <= '9') && json.Valid([]byte(s))
}

// call evaluates the intrinsic function name with its argument.
func (t *cfnTemplate) call(n *yaml.Node, name string, arg *yaml.Node) (*value, error) {
	switch name {
	case "Ref":
		if arg.Kind != yaml.ScalarNode {
			return nil, errAt(n, "Ref takes a name")
		}
		return t.ref(n, arg.Value)
	case "Fn::GetAtt":
		var res, attr string
		switch {
		case arg.Kind == yaml.ScalarNode:
			var ok bool
			res, attr, ok = strings.Cut(arg.Value, ".")
			if !ok {
				return nil, errAt(n, "Fn::GetAtt %q: want Resource.Attribute", arg.Value)
			}
		case arg.Kind == yaml.SequenceNode && len(arg.Content) == 2:
			res = arg.Content[0].Value
			a, err := t.evalText(arg.Content[1])
			if err != nil {
				return nil, err
			}
			attr = a.plain()
		default:
			return nil, errAt(n, "Fn::GetAtt takes [Resource, Attribute]")
		}
		s, err := t.getAtt(n, res, attr)
		if err != nil {
			return nil, err
		}
		return &value{kind: kString, str: s, line: n.Line}, nil
	case "Fn::Sub":
		s, err := t.sub(n, arg)
		if err != nil {
			return nil, err
		}
		return &value{kind: kString, str: s, line: n.Line}, nil
	case "Fn::Join":
		if arg.Kind != yaml.SequenceNode || len(arg.Content) != 2 {
			return nil, errAt(n, "Fn::Join takes [delimiter, [values]]")
		}
		delim, err := t.evalText(arg.Content[0])
		if err != nil {
			return nil, err
		}
		list, err := t.eval(arg.Content[1])
		if err != nil {
			return nil, err
		}
		if list.kind != kArray {
			return nil, errAt(n, "Fn::Join: the values are %s, not a list", list.kind)
		}
		var out text
		for i, e := range list.vals {
			s, err := asText(e)
			if err != nil {
				return nil, errAt(n, "Fn::Join: value %d is %v", i, err)
			}
			if i > 0 {
				out = join(out, delim)
			}
			out = join(out, s)
		}
		return &value{kind: kString, str: out, line: n.Line}, nil
	case "Fn::Select":
		if arg.Kind != yaml.SequenceNode || len(arg.Content) != 2 {
			return nil, errAt(n, "Fn::Select takes [index, [values]]")
		}
		iv, err := t.eval(arg.Content[0])
		if err != nil {
			return nil, err
		}
		i, err := asInt(iv)
		if err != nil {
			return nil, errAt(n, "Fn::Select: the index: %v", err)
		}
		list, err := t.eval(arg.Content[1])
		if err != nil {
			return nil, err
		}
		if list.kind != kArray {
			return nil, errAt(n, "Fn::Select: the values are %s, not a list", list.kind)
		}
		if i < 0 || i >= len(list.vals) {
			return nil, errAt(n, "Fn::Select: index %d is outside the list of %d", i, len(list.vals))
		}
		return list.vals[i], nil
	case "Fn::Split":
		if arg.Kind != yaml.SequenceNode || len(arg.Content) != 2 {
			return nil, errAt(n, "Fn::Split takes [delimiter, string]")
		}
		delim, err := t.evalText(arg.Content[0])
		if err != nil {
			return nil, err
		}
		if !delim.literal() || delim.plain() == "" {
			return nil, errAt(n, "Fn::Split: the delimiter must be a known, non-empty string")
		}
		s, err := t.evalText(arg.Content[1])
		if err != nil {
			return nil, err
		}
		v := &value{kind: kArray, line: n.Line}
		for _, p := range s.split(delim.plain()) {
			v.vals = append(v.vals, &value{kind: kString, str: p, line: n.Line})
		}
		return v, nil
	case "Fn::If":
		if arg.Kind != yaml.SequenceNode || len(arg.Content) != 3 {
			return nil, errAt(n, "Fn::If takes [condition, value if true, value if false]")
		}
		ok, err := t.condition(arg.Content[0], arg.Content[0].Value)
		if err != nil {
			return nil, err
		}
		if ok {
			return t.eval(arg.Content[1])
		}
		return t.eval(arg.Content[2])
	case "Fn::FindInMap":
		if arg.Kind != yaml.SequenceNode || len(arg.Content) < 3 {
			return nil, errAt(n, "Fn::FindInMap takes [map, top-level key, second-level key]")
		}
		var keys []string
		for _, c := range arg.Content[:3] {
			k, err := t.evalText(c)
			if err != nil {
				return nil, err
			}
			if !k.literal() {
				return nil, errAt(c, "Fn::FindInMap: the key is %s, which is not known", k.refs()[0].What)
			}
			keys = append(keys, k.plain())
		}
		node := t.mappings
		for _, k := range keys {
			if node == nil || node.Kind != yaml.MappingNode {
				node = nil
				break
			}
			var next *yaml.Node
			for i := 0; i+1 < len(node.Content); i += 2 {
				if node.Content[i].Value == k {
					next = node.Content[i+1]
				}
			}
			node = next
		}
		if node == nil {
			return nil, errAt(n, "Fn::FindInMap: Mappings has no %s", strings.Join(keys, "."))
		}
		return t.eval(node)
	case "Fn::ImportValue":
		nameText, err := t.evalText(arg)
		if err != nil {
			return nil, err
		}
		export := nameText.plain()
		if v, ok := t.opt.Params[export]; ok {
			return &value{kind: kString, str: lit(v), line: n.Line}, nil
		}
		r := t.envRef(envName(export), export, fmt.Sprintf("the value another stack exports as %s", export), "--param "+export+"=VALUE")
		return &value{kind: kString, str: refText(r), line: n.Line}, nil
	case "Fn::Base64":
		s, err := t.evalText(arg)
		if err != nil {
			return nil, err
		}
		if !s.literal() {
			return nil, errAt(n, "Fn::Base64 of %s, which is not known", s.refs()[0].What)
		}
		return &value{kind: kString, str: lit(base64.StdEncoding.EncodeToString([]byte(s.plain()))), line: n.Line}, nil
	case "Fn::ToJsonString":
		v, err := t.eval(arg)
		if err != nil {
			return nil, err
		}
		return &value{kind: kString, str: v.jsonText(), line: n.Line}, nil
	case "Fn::Length":
		v, err := t.eval(arg)
		if err != nil {
			return nil, err
		}
		if v.kind != kArray {
			return nil, errAt(n, "Fn::Length of %s, not a list", v.kind)
		}
		return &value{kind: kNumber, num: strconv.Itoa(len(v.vals)), line: n.Line}, nil
	case "Fn::GetAZs", "Fn::Cidr":
		return nil, errAt(n, "%s depends on the account and region at deployment, and cannot be resolved", name)
	case "Condition", "Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or":
		return nil, errAt(n, "%s is a condition function: it stands only in Conditions and Fn::If", name)
	}
	short := name
	if !strings.HasPrefix(short, "!") {
		short = "!" + strings.TrimPrefix(name, "Fn::")
	}
	return nil, errAt(n, "unknown intrinsic function %s", short)
}

// evalText evaluates n to a string.
func (t *cfnTemplate) evalText(n *yaml.Node) (text, error) {
	v, err := t.eval(n)
	if err != nil {
		return nil, err
	}
	if v == noValue {
		return nil, errAt(n, "AWS::NoValue where a value is needed")
	}
	s, err := asText(v)
	if err != nil {
		return nil, errAt(n, "%v", err)
	}
	return s, nil
}

// envRef returns the reference to the variable name, making it once.
func (t *cfnTemplate) envRef(name, def, what, hint string) *envRef {
	if r, ok := t.refs[name]; ok {
		return r
	}
	r := &envRef{Name: name, Default: strings.NewReplacer("}", "", "${", "").Replace(def), What: what, Hint: hint}
	t.refs[name] = r
	return r
}

// envName makes an environment variable's name of s: upper case, letters,
// digits and '_'.
func envName(s string) string {
	var b strings.Builder
	for _, r := range strings.ToUpper(s) {
		if r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	out := strings.Trim(b.String(), "_")
	if out == "" || out[0] >= '0' && out[0] <= '9' {
		out = "V_" + out
	}
	return out
}

// The pseudo parameters' values when neither --region nor --account gives
// them: read from the environment, these defaults keep the config valid.
const (
	placeholderRegion  = "us-east-1"
	placeholderAccount = "123456789012"
)

func (t *cfnTemplate) region() text {
	if t.opt.Region != "" {
		return lit(t.opt.Region)
	}
	return refText(t.envRef("AWS_REGION", placeholderRegion, "the stack's region", "--region"))
}

func (t *cfnTemplate) account() text {
	if t.opt.Account != "" {
		return lit(t.opt.Account)
	}
	return refText(t.envRef("AWS_ACCOUNT_ID", placeholderAccount, "the stack's account", "--account"))
}

func (t *cfnTemplate) partition() string { return partitionOf(t.opt.Region) }

// partitionOf is the partition of a region: aws-cn for cn-*, aws-us-gov
// for us-gov-*, else aws.
func partitionOf(region string) string {
	switch {
	case strings.HasPrefix(region, "cn-"):
		return "aws-cn"
	case strings.HasPrefix(region, "us-gov-"):
		return "aws-us-gov"
	}
	return "aws"
}

// ref evaluates Ref of a parameter, pseudo parameter or resource.
func (t *cfnTemplate) ref(n *yaml.Node, name string) (*value, error) {
	str := func(s text) (*value, error) { return &value{kind: kString, str: s, line: n.Line}, nil }
	switch name {
	case "AWS::Region":
		return str(t.region())
	case "AWS::AccountId":
		return str(t.account())
	case "AWS::Partition":
		return str(lit(t.partition()))
	case "AWS::URLSuffix":
		if t.partition() == "aws-cn" {
			return str(lit("amazonaws.com.cn"))
		}
		return str(lit("amazonaws.com"))
	case "AWS::StackName":
		if v, ok := t.opt.Params[name]; ok {
			return str(lit(v))
		}
		return str(refText(t.envRef("STACK_NAME", "stack", "the stack's name", "--param AWS::StackName=NAME")))
	case "AWS::NoValue":
		return noValue, nil
	case "AWS::StackId", "AWS::NotificationARNs":
		return nil, errAt(n, "%s is known only to a deployed stack", name)
	}
	if p, ok := t.params[name]; ok {
		return t.param(n, name, p)
	}
	if r, ok := t.resources[name]; ok {
		s, err := t.resourceValue(n, r, "Ref")
		if err != nil {
			return nil, err
		}
		return str(s)
	}
	return nil, errAt(n, "Ref %s: no such parameter or resource", name)
}

// param evaluates Ref of a parameter: its --param value, else its
// default, else a reference to the environment.
func (t *cfnTemplate) param(n *yaml.Node, name string, p *yaml.Node) (*value, error) {
	typ, def := "", (*yaml.Node)(nil)
	var allowed *yaml.Node
	for i := 0; p.Kind == yaml.MappingNode && i+1 < len(p.Content); i += 2 {
		switch p.Content[i].Value {
		case "Type":
			typ = p.Content[i+1].Value
		case "Default":
			def = p.Content[i+1]
		case "AllowedValues":
			allowed = p.Content[i+1]
		}
	}
	list := strings.HasPrefix(typ, "List<") || typ == "CommaDelimitedList"
	given, ok := t.opt.Params[name]
	switch {
	case ok:
	case strings.HasPrefix(typ, "AWS::SSM::Parameter::Value<"):
		what := "the value of the SSM parameter"
		if def != nil {
			what += " " + def.Value
		}
		if list {
			return nil, errAt(n, "parameter %s is %s, known only at deployment: pass --param %s=VALUE,VALUE", name, what, name)
		}
		r := t.envRef(envName(name), name, fmt.Sprintf("%s (parameter %s)", what, name), "--param "+name+"=VALUE")
		return &value{kind: kString, str: refText(r), line: n.Line}, nil
	case def != nil:
		given = def.Value
		if def.Kind == yaml.SequenceNode {
			var parts []string
			for _, c := range def.Content {
				parts = append(parts, c.Value)
			}
			given = strings.Join(parts, ",")
		}
	default:
		if list {
			return nil, errAt(n, "parameter %s (a list) has no default: pass --param %s=VALUE,VALUE", name, name)
		}
		placeholder := name
		if allowed != nil && allowed.Kind == yaml.SequenceNode && len(allowed.Content) > 0 {
			placeholder = allowed.Content[0].Value
		}
		r := t.envRef(envName(name), placeholder, fmt.Sprintf("the value of parameter %s, which has no default", name), "--param "+name+"=VALUE")
		return &value{kind: kString, str: refText(r), line: n.Line}, nil
	}
	if list {
		v := &value{kind: kArray, line: n.Line}
		for part := range strings.SplitSeq(given, ",") {
			v.vals = append(v.vals, &value{kind: kString, str: lit(strings.TrimSpace(part)), line: n.Line})
		}
		return v, nil
	}
	return &value{kind: kString, str: lit(given), line: n.Line}, nil
}

// resType is what the import knows of a resource type: the property that
// names it, and what Ref and Fn::GetAtt return.
type resType struct {
	nameProp string
	fifoProp string            // a property that, true, makes the name end .fifo
	ref      string            // what Ref returns: "arn", "name" or "url"
	attrs    map[string]string // attribute → "arn", "name" or "url"
	// arn builds the ARN from the partition, region, account and name.
	arn func(p string, region, account, name text) text
}

func arnOf(service, prefix string) func(p string, region, account, name text) text {
	return func(p string, region, account, name text) text {
		return join(lit("arn:"+p+":"+service+":"), region, lit(":"), account, lit(":"+prefix), name)
	}
}

var resTypes = map[string]resType{
	"AWS::Lambda::Function":            {nameProp: "FunctionName", ref: "name", attrs: map[string]string{"Arn": "arn"}, arn: arnOf("lambda", "function:")},
	"AWS::SQS::Queue":                  {nameProp: "QueueName", fifoProp: "FifoQueue", ref: "url", attrs: map[string]string{"Arn": "arn", "QueueName": "name", "QueueUrl": "url"}, arn: arnOf("sqs", "")},
	"AWS::SNS::Topic":                  {nameProp: "TopicName", fifoProp: "FifoTopic", ref: "arn", attrs: map[string]string{"TopicArn": "arn", "TopicName": "name"}, arn: arnOf("sns", "")},
	"AWS::Kinesis::Stream":             {nameProp: "Name", ref: "name", attrs: map[string]string{"Arn": "arn"}, arn: arnOf("kinesis", "stream/")},
	"AWS::StepFunctions::StateMachine": {nameProp: "StateMachineName", ref: "arn", attrs: map[string]string{"Arn": "arn", "Name": "name"}, arn: arnOf("states", "stateMachine:")},
	"AWS::ECS::Cluster":                {nameProp: "ClusterName", ref: "name", attrs: map[string]string{"Arn": "arn"}, arn: arnOf("ecs", "cluster/")},
	"AWS::Events::EventBus":            {nameProp: "Name", ref: "name", attrs: map[string]string{"Arn": "arn", "Name": "name"}, arn: arnOf("events", "event-bus/")},
	"AWS::Logs::LogGroup":              {nameProp: "LogGroupName", ref: "name", attrs: map[string]string{"Arn": "arn"}, arn: arnOf("logs", "log-group:")},
	"AWS::KinesisFirehose::DeliveryStream": {nameProp: "DeliveryStreamName", ref: "name", attrs: map[string]string{"Arn": "arn"},
		arn: arnOf("firehose", "deliverystream/")},
	"AWS::SSM::Document": {nameProp: "Name", ref: "name", attrs: map[string]string{}, arn: arnOf("ssm", "document/")},
	// Resources whose ARN holds what the template cannot know (a revision,
	// an id): their ARN is always read from the environment, with a
	// default of the right service.
	"AWS::ECS::TaskDefinition":           {nameProp: "Family", ref: "arn", attrs: map[string]string{"TaskDefinitionArn": "arn"}},
	"AWS::Events::ApiDestination":        {nameProp: "Name", ref: "name", attrs: map[string]string{"Arn": "arn"}, arn: arnOf("events", "api-destination/")},
	"AWS::Events::Connection":            {nameProp: "Name", ref: "name", attrs: map[string]string{"Arn": "arn"}, arn: arnOf("events", "connection/")},
	"AWS::Lambda::Alias":                 {ref: "arn"},
	"AWS::Lambda::Version":               {ref: "arn"},
	"AWS::IAM::Role":                     {nameProp: "RoleName", ref: "name", attrs: map[string]string{"Arn": "arn"}},
	"AWS::CodeBuild::Project":            {nameProp: "Name", ref: "name", attrs: map[string]string{"Arn": "arn"}, arn: arnOf("codebuild", "project/")},
	"AWS::Batch::JobQueue":               {nameProp: "JobQueueName", ref: "arn", attrs: map[string]string{"JobQueueArn": "arn"}, arn: arnOf("batch", "job-queue/")},
	"AWS::SageMaker::Pipeline":           {nameProp: "PipelineName", ref: "name", attrs: map[string]string{}, arn: arnOf("sagemaker", "pipeline/")},
	"AWS::CodePipeline::Pipeline":        {nameProp: "Name", ref: "name", attrs: map[string]string{}},
	"AWS::ApiGateway::RestApi":           {ref: "id", attrs: map[string]string{}},
	"AWS::AppSync::GraphQLApi":           {nameProp: "Name", ref: "arn", attrs: map[string]string{"Arn": "arn"}},
	"AWS::Redshift::Cluster":             {ref: "name", attrs: map[string]string{}},
	"AWS::Inspector::AssessmentTemplate": {ref: "arn", attrs: map[string]string{"Arn": "arn"}},
}

// getAtt evaluates Fn::GetAtt of a resource.
func (t *cfnTemplate) getAtt(n *yaml.Node, res, attr string) (text, error) {
	r, ok := t.resources[res]
	if !ok {
		return nil, errAt(n, "Fn::GetAtt %s.%s: no such resource", res, attr)
	}
	return t.resourceValue(n, r, attr)
}

// resourceValue is what Ref (attr "Ref") or Fn::GetAtt of r returns: built
// from the resource's name when the template names it, else read from the
// environment.
func (t *cfnTemplate) resourceValue(n *yaml.Node, r *cfnResource, attr string) (text, error) {
	rt, known := resTypes[r.typ]
	form := rt.ref
	if attr != "Ref" {
		form = rt.attrs[attr]
	}
	what := "Ref " + r.id
	if attr != "Ref" {
		what = "Fn::GetAtt " + r.id + "." + attr
	}
	if !known || form == "" {
		// The import cannot tell what this is: its value is read from the
		// environment, with the logical ID as a placeholder.
		suffix := "_" + envName(attr)
		if attr == "Ref" {
			suffix = ""
		}
		return refText(t.envRef(envName(r.id)+suffix, r.id,
			fmt.Sprintf("the value of %s (%s), which the import does not resolve", what, r.typ), "")), nil
	}
	var name text
	fifo := false
	if r.props != nil {
		for i := 0; i+1 < len(r.props.Content); i += 2 {
			k, v := r.props.Content[i].Value, r.props.Content[i+1]
			switch {
			case rt.nameProp != "" && k == rt.nameProp:
				s, err := t.evalText(v)
				if err != nil {
					return nil, err
				}
				name = s
			case rt.fifoProp != "" && k == rt.fifoProp:
				fv, err := t.eval(v)
				if err != nil {
					return nil, err
				}
				fifo, _ = asBool(fv)
			}
		}
	}
	if r.typ == "AWS::Lambda::Alias" || r.typ == "AWS::Lambda::Version" {
		return t.lambdaQualified(r, what)
	}
	if r.typ == "AWS::IAM::Role" && name != nil && form == "arn" {
		return join(lit("arn:"+t.partition()+":iam::"), t.account(), lit(":role"), t.rolePath(r), name), nil
	}
	idInARN := r.typ == "AWS::Events::ApiDestination" || r.typ == "AWS::Events::Connection"
	switch {
	case name != nil && form == "name":
		return name, nil
	case name != nil && form == "url":
		return t.queueURL(name), nil
	case name != nil && form == "arn" && rt.arn != nil && !idInARN:
		return rt.arn(t.partition(), t.region(), t.account(), name), nil
	}
	// The name is CloudFormation's (or the ARN holds what only the
	// deployed resource knows): read it from the environment, with a
	// placeholder of the right shape.
	placeholder := lit(r.id)
	if name != nil {
		placeholder = name
	} else if fifo {
		placeholder = lit(r.id + ".fifo")
	}
	why := "whose name CloudFormation generates"
	if name != nil {
		why = "which only the deployed stack knows"
	}
	var def text
	switch form {
	case "name", "id":
		def = placeholder
	case "url":
		def = t.queueURL(placeholder)
	case "arn":
		switch {
		case r.typ == "AWS::ECS::TaskDefinition":
			// A family alone names its latest revision: a good placeholder.
			def = placeholder
			why = "whose revision only the deployed stack knows"
		case rt.arn != nil:
			def = rt.arn(t.partition(), t.region(), t.account(), placeholder)
			if idInARN {
				def = join(def, lit("/00000000-0000-0000-0000-000000000000"))
				why = "whose ARN holds an id only the deployed stack knows"
			}
		default:
			def = placeholder
		}
	}
	suffix := map[string]string{"arn": "_ARN", "name": "_NAME", "url": "_URL", "id": "_ID"}[form]
	return refText(t.envRef(envName(r.id)+suffix, def.plain(),
		fmt.Sprintf("the %s of %s (%s), %s", map[string]string{"arn": "ARN", "name": "name", "url": "URL", "id": "id"}[form], r.id, r.typ, why), "")), nil
}

// lambdaQualified is the ARN of a Lambda alias or version: its function's
// ARN and the alias's name, when both are known.
func (t *cfnTemplate) lambdaQualified(r *cfnResource, what string) (text, error) {
	var fn, qual text
	for i := 0; r.props != nil && i+1 < len(r.props.Content); i += 2 {
		k, v := r.props.Content[i].Value, r.props.Content[i+1]
		if k != "FunctionName" && !(k == "Name" && r.typ == "AWS::Lambda::Alias") {
			continue
		}
		s, err := t.evalText(v)
		if err != nil {
			return nil, err
		}
		if k == "FunctionName" {
			fn = s
		} else {
			qual = s
		}
	}
	if fn != nil && !strings.HasPrefix(fn.plain(), "arn:") {
		fn = arnOf("lambda", "function:")(t.partition(), t.region(), t.account(), fn)
	}
	if fn != nil && qual != nil {
		return join(fn, lit(":"), qual), nil
	}
	def := arnOf("lambda", "function:")(t.partition(), t.region(), t.account(), lit(r.id))
	if fn != nil {
		def = join(fn, lit(":1"))
	}
	return refText(t.envRef(envName(r.id)+"_ARN", def.plain(),
		fmt.Sprintf("the ARN of %s (%s), which only the deployed stack knows (%s)", r.id, r.typ, what), "")), nil
}

func (t *cfnTemplate) rolePath(r *cfnResource) text {
	for i := 0; r.props != nil && i+1 < len(r.props.Content); i += 2 {
		if r.props.Content[i].Value == "Path" {
			if s, err := t.evalText(r.props.Content[i+1]); err == nil {
				return s
			}
		}
	}
	return lit("/")
}

// queueURL is the URL of the queue named name in the stack's region and
// account.
func (t *cfnTemplate) queueURL(name text) text {
	domain := "amazonaws.com"
	if t.partition() == "aws-cn" {
		domain = "amazonaws.com.cn"
	}
	return join(lit("https://sqs."), t.region(), lit("."+domain+"/"), t.account(), lit("/"), name)
}

// sub evaluates Fn::Sub: a string, or [string, {variables}].
func (t *cfnTemplate) sub(n, arg *yaml.Node) (text, error) {
	tmpl := arg
	vars := map[string]*yaml.Node{}
	if arg.Kind == yaml.SequenceNode {
		if len(arg.Content) != 2 || arg.Content[1].Kind != yaml.MappingNode {
			return nil, errAt(n, "Fn::Sub takes a string, or [string, {name: value}]")
		}
		tmpl = arg.Content[0]
		m := arg.Content[1]
		for i := 0; i+1 < len(m.Content); i += 2 {
			vars[m.Content[i].Value] = m.Content[i+1]
		}
	}
	if tmpl.Kind != yaml.ScalarNode {
		return nil, errAt(n, "Fn::Sub: the template must be a string")
	}
	s := tmpl.Value
	var out text
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			return join(out, lit(s)), nil
		}
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return nil, errAt(n, "Fn::Sub: unterminated ${ in %q", tmpl.Value)
		}
		name := s[i+2 : i+end]
		out = join(out, lit(s[:i]))
		s = s[i+end+1:]
		if strings.HasPrefix(name, "!") { // ${!Literal} is the text ${Literal}
			out = join(out, lit("${"+name[1:]+"}"))
			continue
		}
		var v text
		var err error
		switch vn, isVar := vars[name]; {
		case isVar:
			v, err = t.evalText(vn)
		case strings.Contains(name, ".") && !strings.HasPrefix(name, "AWS::"):
			res, attr, _ := strings.Cut(name, ".")
			v, err = t.getAtt(n, res, attr)
		default:
			var rv *value
			if rv, err = t.ref(n, name); err == nil {
				v, err = asText(rv)
				if err != nil {
					err = errAt(n, "Fn::Sub: ${%s} is %v", name, err)
				}
			}
		}
		if err != nil {
			return nil, err
		}
		out = join(out, v)
	}
}

// condition evaluates the named condition (or, with name "", the
// condition expression n).
func (t *cfnTemplate) condition(n *yaml.Node, name string) (bool, error) {
	if name != "" {
		if v, ok := t.condVals[name]; ok {
			return v, nil
		}
		c, ok := t.conditions[name]
		if !ok {
			return false, errAt(n, "no condition %s", name)
		}
		if t.condBusy[name] {
			return false, errAt(n, "condition %s refers to itself", name)
		}
		t.condBusy[name] = true
		defer delete(t.condBusy, name)
		v, err := t.condExpr(c)
		if err != nil {
			return false, err
		}
		t.condVals[name] = v
		return v, nil
	}
	return t.condExpr(n)
}

func (t *cfnTemplate) condExpr(n *yaml.Node) (bool, error) {
	fn, arg, ok := intrinsic(n)
	if !ok {
		return false, errAt(n, "a condition must be Fn::Equals, Fn::Not, Fn::And, Fn::Or or Condition")
	}
	switch fn {
	case "Condition":
		return t.condition(n, arg.Value)
	case "Fn::Equals":
		if arg.Kind != yaml.SequenceNode || len(arg.Content) != 2 {
			return false, errAt(n, "Fn::Equals takes [a, b]")
		}
		var sides [2]string
		for i, c := range arg.Content {
			s, err := t.evalText(c)
			if err != nil {
				return false, err
			}
			if !s.literal() {
				return false, errAt(c, "the condition depends on %s, which is not known", s.refs()[0].What)
			}
			sides[i] = s.plain()
		}
		return sides[0] == sides[1], nil
	case "Fn::Not", "Fn::And", "Fn::Or":
		if arg.Kind != yaml.SequenceNode || len(arg.Content) == 0 {
			return false, errAt(n, "%s takes a list of conditions", fn)
		}
		var vals []bool
		for _, c := range arg.Content {
			v, err := t.condExpr(c)
			if err != nil {
				return false, err
			}
			vals = append(vals, v)
		}
		switch fn {
		case "Fn::Not":
			return !vals[0], nil
		case "Fn::And":
			return !slices.Contains(vals, false), nil
		}
		return slices.Contains(vals, true), nil
	}
	return false, errAt(n, "%s is not a condition function", fn)
}

// eventRules reads the template's AWS::Events::Rule resources, in order.
func (t *cfnTemplate) eventRules() []*ebRule {
	var rules []*ebRule
	for _, id := range t.order {
		res := t.resources[id]
		if res.typ != "AWS::Events::Rule" {
			continue
		}
		r := &ebRule{ID: id, Where: fmt.Sprintf("%s:%d", t.file, res.line), Bus: "default"}
		rules = append(rules, r)
		if res.cond != "" {
			switch ok, err := t.condition(nil, res.cond); {
			case err != nil:
				t.notes = append(t.notes, fmt.Sprintf("%s: imported, although whether CloudFormation creates it (condition %s) is not known: %v", r.Where, res.cond, err))
			case !ok:
				r.Problem = fmt.Sprintf("its condition %s is false, so CloudFormation does not create it", res.cond)
				continue
			}
		}
		if res.props == nil || res.props.Kind != yaml.MappingNode {
			r.Problem = "it has no Properties"
			continue
		}
		props := &value{kind: kObject, line: res.props.Line}
		var targets *yaml.Node
		for i := 0; i+1 < len(res.props.Content); i += 2 {
			k, n := res.props.Content[i].Value, res.props.Content[i+1]
			if k == "Targets" {
				targets = n
				continue
			}
			v, err := t.eval(n)
			if err != nil {
				if r.Problem == "" {
					r.Problem = fmt.Sprintf("%s: %v", k, err)
				}
				continue
			}
			if v != noValue {
				props.set(k, v)
			}
		}
		if r.Problem != "" {
			continue
		}
		readRule(r, props)
		if r.Name != "" {
			r.ARN = t.ruleARN(r)
		}
		if targets == nil {
			continue
		}
		var elems []*yaml.Node
		if _, _, ok := intrinsic(targets); ok || targets.Kind != yaml.SequenceNode {
			elems = []*yaml.Node{targets}
		} else {
			elems = targets.Content
		}
		for i, n := range elems {
			v, err := t.eval(n)
			if err != nil {
				r.Targets = append(r.Targets, &ebTarget{ID: fmt.Sprintf("Targets[%d]", i), Where: fmt.Sprintf("%s:%d", t.file, n.Line), Problem: err.Error()})
				continue
			}
			if v == noValue {
				continue
			}
			list := []*value{v}
			if v.kind == kArray {
				list = v.vals
			}
			for _, e := range list {
				tg := &ebTarget{Where: fmt.Sprintf("%s:%d", t.file, max(e.line, n.Line))}
				readTarget(tg, e)
				r.Targets = append(r.Targets, tg)
			}
		}
	}
	return rules
}

// ruleARN is the ARN of a rule the template names.
func (t *cfnTemplate) ruleARN(r *ebRule) text {
	path := r.Name
	if r.Bus != "default" {
		path = r.Bus + "/" + r.Name
	}
	return join(lit("arn:"+t.partition()+":events:"), t.region(), lit(":"), t.account(), lit(":rule/"+path))
}
