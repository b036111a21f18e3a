"""`cinnox-sms`: the command line for the people who operate the tracker."""
