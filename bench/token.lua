-- wrk script: CCRI's quickstart token request (client credentials, Basic auth).
wrk.method = "POST"
wrk.body = "grant_type=client_credentials"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic cGF0aWVudC1hY2Nlc3M6SVNoVFZpOG1SU1Y3YlZSRXVVMWZyZWlEbzc5eV84ZkxYM0JCdzJuZjJlSXB2OUFfcjkxVmxWdUYyTE9pS196TFpBa0JRQ3VzRVhMcF9vNkRFSWd2YVE="
