notifier "hook" {
  plugin = "webhook"
  url    = "https://example.com/hook"
  secret = "whsec_c2VjcmV0LXNpZ25pbmcta2V5
}
