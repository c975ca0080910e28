import STP.Compat
import STP.Gate
import STP.Protocol
import STP.Session
import STP.Export
import STP.Check
import STP.Judge
import STP.Extract
