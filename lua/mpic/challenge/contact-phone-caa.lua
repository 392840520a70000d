-- contact-phone-caa (BR 3.2.2.4.17): the selected number equals a contactphone
-- property of the relevant CAA RRset (climbing from [{prefix}.]{target}).
return require("mpic.challenge._contact").caa {
  name = "contact-phone-caa",
  br_section = "3.2.2.4.17",
  tag = "contactphone",
  sunset = "2027-03-15",
  caa_method_label = "ca-tbr-17",
}
