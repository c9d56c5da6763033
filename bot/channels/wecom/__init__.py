"""企业微信 (WeCom) self-built application as a channel: callback server, API client, sender."""
