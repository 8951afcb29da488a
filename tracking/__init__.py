"""Ad tracking: signed, expiring tracking tokens, the impression beacon and click redirect
(billing through campaigns.budget_charge), last-click conversion attribution, frequency
counters, and the storefront snippet + demo storefront page."""
