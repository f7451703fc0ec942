# Route tests for config.hcl: `ringside test` runs them (nothing is
# delivered). They hold whether or not the push credentials are in the
# environment: with them, ios and android deliver too. The format is in
# docs/route-tests.md.

test "an audio call reaches the app server" {
  call {
    type       = "A"
    to_user_id = "2809"
  }
  expect {
    status = "accepted"
    routes = ["all"]
    notifier "app_server" {
      role     = "notify"
      route    = "all"
      delivers = true
      payload = {
        video          = false
        app_call_type  = "A"
        app_callee_uid = "2809"
        cc_param       = "cmluZ3NpZGUgdGVzdA==" # the test call's own param
      }
    }
  }
}

test "a video call tells the app server it is video" {
  call {
    type = "V"
  }
  expect {
    notifier "app_server" {
      delivers = true
      payload  = { video = true, app_call_type = "V" }
    }
  }
}

test "the app server always answers, so SMS is never needed at once" {
  call {
    type = "V"
  }
  device "phone" { token = "+819012345678" }
  expect {
    status   = "accepted"
    fallback = []
    notifier "sms" {
      role = "fallback"
    }
  }
}

test "the iPhone and the Android phone are rung by ios and android" {
  call {
    to_service_id = "linecorp.com"
    to_user_id    = "2809"
  }
  device "apns" {}
  device "fcm" {}
  expect {
    routes = ["all"]
    notifier "ios" {
      role  = "notify"
      route = "all"
    }
    notifier "android" {
      role  = "notify"
      route = "all"
    }
    notifier "app_server" {
      delivers = true
      devices  = 0 # a webhook needs no device
    }
  }
}

test "the caller's app_svr_data reaches the app server" {
  call {
    app_svr_data = "room=42"
    extra        = { tier = "gold" } # keys LINE Planet adds; payloads may use them
  }
  expect {
    notifier "app_server" {
      payload = { app_svr_data = "room=42" }
    }
  }
}
