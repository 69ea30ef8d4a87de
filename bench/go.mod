module github.com/ntpctl/ntpctl/bench

go 1.26.0

replace github.com/ntpctl/ntpctl => ../

require (
	github.com/facebook/time v0.0.0-20260822211804-f81aedc1c1e3
	github.com/ntpctl/ntpctl v0.0.0-00010101000000-000000000000
)
