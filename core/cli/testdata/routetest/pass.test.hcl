test "video calls ring the desk and the hook" {
  call {
    type       = "V"
    to_user_id = "2809"
  }
  device "console" { token = "abcdef0123456789-desk" }
  expect {
    status = "accepted"
    routes = ["video", "all"]
    notifier "desk" {
      role     = "notify"
      route    = "video"
      delivers = true
      devices  = 1
      payload  = { video = true, caller = "CALLER", app_callee_uid = "2809" }
    }
    notifier "hook" {
      role     = "notify"
      route    = "all"
      delivers = true
    }
    fallback = []
  }
}

test "a video call without a desk falls back to the hook" {
  call { type = "V" }
  expect {
    status = "accepted"
    notifier "desk" {
      delivers = false
      devices  = 0
    }
    notifier "hook" {
      role  = "fallback"
      route = "video"
    }
    fallback = ["hook"]
  }
}

test "nobody is unrouted" {
  call { to_service_id = "nobody" }
  expect {
    status = "unrouted"
    routes = []
  }
}

test "gold calls without a desk reach nobody: the pager is disabled" {
  call {
    from_service_id = "gold"
    extra           = { tier = "gold" }
  }
  expect {
    status = "no_devices"
    routes = ["gold"]
    notifier "pager" {
      role     = "fallback"
      disabled = true
      delivers = false
    }
    no_notifier = ["hook", "desk"]
  }
}

test "gold calls ring the desk with the tier" {
  call {
    from_service_id = "gold"
    extra           = { tier = "gold" }
  }
  device "console" {}
  expect {
    notifier "vip" {
      delivers = true
      payload = {
        tier = "gold"
        rank = 1.0
      }
    }
  }
}

test "a gold call without a tier skips vip" {
  call { from_service_id = "gold" }
  device "console" {}
  expect {
    status = "no_devices"
    notifier "vip" {
      delivers = false
    }
  }
}
