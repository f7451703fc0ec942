# What the shipped configs do without push credentials in the environment:
# only the app server's webhook delivers.

test "without credentials only the app server rings" {
  call { type = "V" }
  device "apns" {}
  device "fcm" {}
  device "phone" { token = "+819012345678" }
  expect {
    status = "accepted"
    routes = ["all"]
    notifier "ios" {
      disabled = true
      delivers = false
    }
    notifier "android" {
      disabled = true
      delivers = false
    }
    notifier "sms" {
      role     = "fallback"
      disabled = true
    }
    notifier "app_server" {
      delivers = true
      payload  = { video = true }
    }
    fallback = []
  }
}
