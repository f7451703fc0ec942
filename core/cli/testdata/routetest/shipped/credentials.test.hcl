# What the shipped configs do with push credentials in the environment:
# the iPhone and the Android phone ring beside the app server; SMS waits.

test "with credentials the phones ring" {
  call { type = "V" }
  device "apns" {}
  device "fcm" {}
  device "phone" { token = "+819012345678" }
  expect {
    status = "accepted"
    notifier "ios" {
      disabled = false
      delivers = true
      devices  = 1
      payload  = { app_call_type = "V", cc_param = "cmluZ3NpZGUgdGVzdA==" }
    }
    notifier "android" {
      delivers = true
      devices  = 1
    }
    notifier "sms" {
      role     = "fallback"
      disabled = false
      delivers = false
      devices  = 1
    }
    notifier "app_server" {
      delivers = true
    }
    fallback = []
  }
}

test "with credentials a callee with only a phone number still gets the app server, not SMS" {
  device "phone" { token = "+819012345678" }
  expect {
    notifier "sms" {
      delivers = false
    }
    fallback = []
  }
}
