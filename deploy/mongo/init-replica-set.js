// Run once by the mongo-init service: a replica set of one (so transactions and
// change streams work) and a user per service, each limited to its own database.
// It signs in as the administrator itself, with the password from the environment:
// on the command line (`mongosh -p …`) every process on the host could read it.
const adminPassword = process.env.MONGO_ADMIN_PASSWORD;
if (!adminPassword) throw new Error("MONGO_ADMIN_PASSWORD is not set");
db.getSiblingDB("admin").auth("admin", adminPassword);

const members = [{ _id: 0, host: "mongo:27017" }];
try {
  rs.status();
} catch (error) {
  rs.initiate({ _id: "rs0", members: members });
}
for (let i = 0; i < 60 && !db.hello().isWritablePrimary; i++) sleep(1000);

const admin = db.getSiblingDB("admin");
for (const service of ["intake", "routing", "notify", "study", "care"]) {
  const password = process.env[`MONGO_${service.toUpperCase()}_PASSWORD`];
  if (!password) throw new Error(`MONGO_${service.toUpperCase()}_PASSWORD is not set`);
  const roles = [{ role: "readWrite", db: `wangge_${service}` }];
  if (admin.getUser(service)) admin.updateUser(service, { pwd: password, roles: roles });
  else admin.createUser({ user: service, pwd: password, roles: roles });
}
print("replica set and service users ready");
