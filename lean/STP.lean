import STP.Compat
import STP.Protocol
import STP.Session
import STP.Check
import STP.Extract
